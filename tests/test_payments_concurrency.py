"""Two simultaneous requests for one bill open ONE attempt: the database decides (a partial unique index on
the open attempts of an obligation), on SQLite (whose writers queue) and on PostgreSQL.

On PostgreSQL both requests are held right after they looked for an open attempt, until both have looked
(a barrier around the real ``orders.latest_attempts``): both find none, both try to open one, and only the
index stands between them and two open attempts for the same bill."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from core.db import unit_of_work
from core.errors import AppError
from lending.payment_purposes import PURPOSE, current_bill
from payments import checkout, orders, withholding
from payments.models import PaymentOrder
from tests.conftest import IS_POSTGRES
from tests.servicing_support import make_loan


@pytest.fixture
def both_look_first(monkeypatch):
    """PostgreSQL: each thread's first look for open attempts waits for the other's (SQLite runs one writer
    at a time: a thread held inside its transaction would hold the other out, so nothing is held there)."""
    if not IS_POSTGRES:
        return
    barrier = threading.Barrier(2)
    looked = threading.local()
    real = orders.latest_attempts

    def latest_attempts(session, purpose, obligation_ref):
        found = real(session, purpose, obligation_ref)
        if not getattr(looked, "once", False):
            looked.once = True
            barrier.wait(10)
        return found

    monkeypatch.setattr(orders, "latest_attempts", latest_attempts)


def _race(fn) -> list[object]:
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def run(i: int) -> None:
        barrier.wait(10)
        try:
            with unit_of_work() as s:
                outcomes[i] = fn(s)
        except AppError as exc:
            outcomes[i] = exc.code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def _bill() -> tuple[int, int, str, int]:
    with unit_of_work() as s:
        _, loan = make_loan(s)
        bill = current_bill(s, loan)
        return loan.id, loan.customer_id, bill.obligation_ref, bill.amount


def _open_attempts(obligation_ref: str) -> list[str]:
    with unit_of_work() as s:
        return list(s.scalars(select(PaymentOrder.out_trade_no).where(
            PaymentOrder.obligation_ref == obligation_ref, PaymentOrder.status.in_(orders.OPEN))))


def test_two_simultaneous_checkouts_of_one_bill_open_one_attempt(committed, pay_server, both_look_first):
    _, customer_id, ref, amount = _bill()
    outcomes = _race(lambda s: checkout.start_jsapi(
        s, purpose=PURPOSE, obligation_ref=ref, customer_id=customer_id, amount=amount, description="还款",
        openid="o-race")[0].out_trade_no)
    assert _open_attempts(ref) == [outcomes[0]]
    assert outcomes[0] == outcomes[1]  # the second tap pays the first's order


def test_two_simultaneous_debits_of_one_bill_open_one_attempt(committed, pay_server, both_look_first):
    _, customer_id, ref, amount = _bill()
    with unit_of_work() as s:
        withholding.authorize(s, customer_id=customer_id, account_no="6222020200112233445", holder_name="王先生",
                              bank_name="工商银行", scope=[PURPOSE], max_amount=amount, signed_via="console")
    outcomes = _race(lambda s: withholding.request(s, purpose=PURPOSE, obligation_ref=ref, customer_id=customer_id,
                                                   amount=amount, description="还款（代扣）").out_trade_no)
    opened = _open_attempts(ref)
    assert len(opened) == 1 and opened[0] in outcomes
    assert sorted(o for o in outcomes if o != opened[0]) in (["payment_attempt_open"], ["payment_order_state"])
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(PaymentOrder)
                        .where(PaymentOrder.obligation_ref == ref)) == 1


def test_the_database_keeps_one_open_attempt_per_obligation(session):
    from payments.exceptions import OpenAttemptExists

    kw = {"purpose": PURPOSE, "obligation_ref": "loan:0:test", "customer_id": None, "amount": 100,
          "description": "还款", "method": "jsapi"}
    first = orders.create(session, **kw)
    with pytest.raises(OpenAttemptExists, match=first.out_trade_no):
        orders.create(session, **kw)
    orders.move(session, first, "closed", source="system", reason="测试")
    session.flush()
    second = orders.create(session, **kw)  # once the first is closed, the next attempt opens
    assert (second.attempt_no, second.status) == (2, "created")
