"""Withholding (代扣) against the simulator over real HTTP: the customer's authorisation (sealed account,
scope, limit, revocable), debits by notification and by polling, failures retried on the schedule as new
attempts, unknown outcomes resolved by polling."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from core import clock
from core.models import AuditLog
from lending.models import Repayment
from lending.payment_purposes import PURPOSE, current_bill, request_withholding
from payments import orders, withholding
from payments.exceptions import AuthorizationInvalid, AuthorizationMissing, OrderStateConflict
from payments.models import PaymentOrder, WithholdingAuthorization
from tests.servicing_support import make_loan

ACCOUNT = "6222020200112233445"


@pytest.fixture
def loan(session):
    _, loan = make_loan(session)
    return loan


def _authorize(session, loan, **kw):
    kw.setdefault("scope", [PURPOSE])
    kw.setdefault("max_amount", 500_000)
    return withholding.authorize(session, customer_id=loan.customer_id, account_no=ACCOUNT, holder_name="王先生",
                                 bank_name="工商银行", signed_via="console", **kw)


def test_the_authorisation_records_who_when_which_account_sealed_and_scope(session, loan, pay_server):
    auth = _authorize(session, loan)
    assert auth.account_masked == "6222 **** **** 3445" and auth.provider_contract_id.startswith("SIMC")
    raw = session.execute(text("SELECT account_enc FROM withholding_authorization WHERE id = :id"),
                          {"id": auth.id}).scalar_one()
    assert ACCOUNT not in raw
    assert withholding.reveal_account(session, auth) == ACCOUNT
    actions = set(session.scalars(select(AuditLog.action).where(AuditLog.entity_id == str(auth.id))))
    assert {"payments.withholding.authorize", "payments.withholding.reveal_account"} <= actions
    assert pay_server.state()["contracts"][0]["account_tail"] == "3445"


@pytest.mark.parametrize("field, value", [("account_no", "6222-abc"), ("scope", []), ("max_amount", 0)])
def test_a_bad_authorisation_is_refused_and_nothing_written(session, loan, pay_server, field, value):
    kw = {"account_no": ACCOUNT, "holder_name": "王先生", "bank_name": "工商银行", "scope": [PURPOSE],
          "max_amount": 1000, "signed_via": "console", field: value}
    with pytest.raises(AuthorizationInvalid):
        withholding.authorize(session, customer_id=loan.customer_id, **kw)
    assert session.scalar(select(func.count()).select_from(WithholdingAuthorization)) == 0
    assert pay_server.state()["contracts"] == []


def test_no_debit_without_an_authorisation_covering_the_purpose(session, loan, pay_server):
    with pytest.raises(AuthorizationMissing):
        request_withholding(session, loan, staff_id=None)
    _authorize(session, loan, scope=["finance.fee"])
    with pytest.raises(AuthorizationMissing):
        request_withholding(session, loan, staff_id=None)


def test_a_debit_succeeds_by_notification_and_books_the_repayment(session, loan, pay_server, task_runner):
    _authorize(session, loan)
    bill = current_bill(session, loan)
    order = request_withholding(session, loan, staff_id=None)
    session.commit()
    with pytest.raises(OrderStateConflict):  # one open debit per bill
        request_withholding(session, loan, staff_id=None)
    task_runner.drain()  # payments.submit_withholding
    session.expire_all()
    order = session.get(PaymentOrder, order.id)
    assert order.status == "submitted"
    assert pay_server.notify(order.out_trade_no) == [204]
    task_runner.drain()
    session.expire_all()
    order = session.get(PaymentOrder, order.id)
    assert order.status == "succeeded"
    repayment = session.scalar(select(Repayment).where(Repayment.external_reference == order.out_trade_no))
    assert (repayment.amount, repayment.channel) == (bill.amount, "withholding")


def test_a_failed_debit_is_retried_on_schedule_as_a_new_attempt(session, loan, pay_server, task_runner):
    _authorize(session, loan)
    pay_server.admin("withhold_next", {"outcomes": ["fail"]})
    first = request_withholding(session, loan, staff_id=None)
    session.commit()
    task_runner.drain()
    assert orders.poll(session, first.id) is True
    assert first.status == "failed" and first.next_check_at == clock.now() + withholding.RETRY_SCHEDULE[0]
    task_runner.sent.clear()
    from payments.tasks import retry_withholdings

    retry_withholdings()  # not due yet
    assert session.scalar(select(func.count()).select_from(PaymentOrder)) == 1
    clock.advance(withholding.RETRY_SCHEDULE[0] + timedelta(seconds=1))
    retry_withholdings()
    task_runner.drain()
    session.expire_all()
    second = session.scalar(select(PaymentOrder).where(PaymentOrder.attempt_no == 2))
    assert second.retry_of_id == first.id and second.out_trade_no != first.out_trade_no
    assert second.status == "submitted"
    assert orders.poll(session, second.id) is True and second.status == "succeeded"
    retry_withholdings()  # the first attempt is not retried again
    assert session.scalar(select(func.count()).select_from(PaymentOrder)) == 2


def test_an_unreadable_answer_is_unknown_until_the_poll_knows(session, loan, pay_server, task_runner):
    _authorize(session, loan)
    pay_server.admin("withhold_next", {"outcomes": ["error"]})
    order = request_withholding(session, loan, staff_id=None)
    session.commit()
    task_runner.drain()
    session.expire_all()
    order = session.get(PaymentOrder, order.id)
    assert order.status == "unknown"
    assert orders.poll(session, order.id) is True  # the provider never took it: failed, retry scheduled
    assert order.status == "failed" and order.next_check_at is not None


def test_a_pending_debit_is_polled_until_it_settles(session, loan, pay_server, task_runner):
    _authorize(session, loan)
    pay_server.admin("withhold_next", {"outcomes": ["pending"]})
    order = request_withholding(session, loan, staff_id=None)
    session.commit()
    task_runner.drain()
    assert orders.poll(session, order.id) is False
    assert order.status == "submitted" and order.next_check_at > clock.now()
    pay_server.admin("settle", {"out_trade_no": order.out_trade_no, "outcome": "success"})
    assert orders.poll(session, order.id) is True and order.status == "succeeded"


def test_a_revoked_authorisation_stops_debits_and_retries(session, loan, pay_server, task_runner):
    auth = _authorize(session, loan)
    pay_server.admin("withhold_next", {"outcomes": ["fail"]})
    first = request_withholding(session, loan, staff_id=None)
    session.commit()
    task_runner.drain()
    orders.poll(session, first.id)
    withholding.revoke(session, auth.id, reason="客户申请撤销", staff_id=None)
    assert auth.status == "revoked" and pay_server.state()["contracts"][0]["state"] == "TERMINATED"
    clock.advance(timedelta(days=2))
    from payments.tasks import retry_withholdings

    retry_withholdings()
    assert session.scalar(select(func.count()).select_from(PaymentOrder)) == 1
    with pytest.raises(AuthorizationMissing):
        request_withholding(session, loan, staff_id=None)
