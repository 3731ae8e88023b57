"""Reconciliation against the simulator's daily bill over real HTTP: matches reconciled, every kind of
mismatch listed with its action, resolving by querying the provider, re-runs supersede."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from payments import checkout, purposes, reconciliation
from payments.exceptions import PaymentInvalid
from payments.models import PaymentOrder

purposes.register("test.noop", "测试", lambda session, s: f"noop:{s.out_trade_no}")


def _paid(session, pay_server, ref, amount=1_000, notify=True):
    order, _ = checkout.start_jsapi(session, purpose="test.noop", obligation_ref=ref, customer_id=None, amount=amount,
                                    description="测试", openid="o-openid-1")
    session.commit()
    pay_server.pay(order.out_trade_no, notify=notify)
    return order


@pytest.fixture
def day(session, pay_server, task_runner):
    """Five orders paid today: a match, one whose notification was lost, one the bill prices differently,
    one missing from the bill, and a bill line we never saw. The clock then moves to tomorrow."""
    clock.freeze(datetime.now(UTC))
    made = {name: _paid(session, pay_server, f"r:{name}", notify=name != "lost")
            for name in ("match", "lost", "amount", "dropped")}
    task_runner.drain()
    pay_server.admin("bill", {"op": "amount", "out_trade_no": made["amount"].out_trade_no, "amount": 999})
    pay_server.admin("bill", {"op": "drop", "out_trade_no": made["dropped"].out_trade_no})
    today = clock.today()
    pay_server.admin("bill", {"op": "extra", "out_trade_no": "PUNKNOWN00000001", "amount": 5_000,
                              "date": today.isoformat()})
    clock.freeze(datetime.now(UTC) + timedelta(days=1))
    session.expire_all()
    return today, made


def test_the_bill_is_matched_and_every_mismatch_listed(session, day):
    today, made = day
    recon = reconciliation.run(session, today, staff_id=None)
    assert (recon.status, recon.bill_lines, recon.matched, recon.mismatched) == ("done", 4, 1, 4)
    kinds = {i.out_trade_no: (i.kind, i.action) for i in reconciliation.items(session, recon.id)}
    assert kinds == {made["lost"].out_trade_no: ("status_differs", "poll"),
                     made["amount"].out_trade_no: ("amount_differs", "accept"),
                     made["dropped"].out_trade_no: ("missing_provider", "poll"),
                     "PUNKNOWN00000001": ("missing_ours", "accept")}  # no order to query: verified with a note
    assert session.get(PaymentOrder, made["match"].id).status == "reconciled"
    assert session.get(PaymentOrder, made["amount"].id).status == "succeeded"
    assert recon.bill_amount == 1_000 * 2 + 999 + 5_000 and recon.our_amount == 3_000


def test_resolving_a_lost_notification_queries_the_provider_and_records_the_payment(session, day):
    today, made = day
    recon = reconciliation.run(session, today, staff_id=None)
    lost = next(i for i in reconciliation.items(session, recon.id) if i.kind == "status_differs")
    reconciliation.resolve(session, lost.id, action="poll", note="", staff_id=None)
    assert lost.status == "resolved" and session.get(PaymentOrder, made["lost"].id).status == "succeeded"
    again = reconciliation.run(session, today, staff_id=None)
    assert again.matched == 2 and again.mismatched == 3
    assert all(i.status == "resolved" for i in reconciliation.items(session, recon.id))


def test_the_suggested_action_of_a_line_we_hold_no_order_for_resolves_it(session, day):
    today, _ = day
    recon = reconciliation.run(session, today, staff_id=None)
    item = next(i for i in reconciliation.items(session, recon.id) if i.kind == "missing_ours")
    assert list(reconciliation.actions_for(item)) == ["accept"] == [item.action]
    reconciliation.resolve(session, item.id, action=item.action, note="商户平台手工收款，已入账", staff_id=None)
    assert (item.status, item.note) == ("resolved", "商户平台手工收款，已入账")


def test_a_bill_line_refunded_at_the_provider_for_an_order_we_hold_paid_is_a_status_difference(
        session, pay_server, task_runner):
    clock.freeze(datetime.now(UTC))
    order = _paid(session, pay_server, "r:refunded-outside")
    kept = _paid(session, pay_server, "r:kept")
    task_runner.drain()
    pay_server.admin("bill", {"op": "refund", "out_trade_no": order.out_trade_no})  # refunded outside the product
    today = clock.today()
    clock.freeze(datetime.now(UTC) + timedelta(days=1))
    session.expire_all()
    recon = reconciliation.run(session, today, staff_id=None)
    items = reconciliation.items(session, recon.id)
    assert [(i.out_trade_no, i.kind, i.our_status, i.bill_status, i.our_amount, i.bill_amount) for i in items] == [
        (order.out_trade_no, "status_differs", "succeeded", "REFUND", 1_000, 1_000)]
    assert (recon.matched, recon.mismatched) == (1, 1)
    assert session.get(PaymentOrder, order.id).status == "succeeded"  # not reconciled while it differs
    assert session.get(PaymentOrder, kept.id).status == "reconciled"


def test_accepting_a_difference_needs_a_note(session, day):
    today, _ = day
    recon = reconciliation.run(session, today, staff_id=None)
    item = next(i for i in reconciliation.items(session, recon.id) if i.kind == "amount_differs")
    with pytest.raises(PaymentInvalid):
        reconciliation.resolve(session, item.id, action="accept", note=" ", staff_id=None)
    reconciliation.resolve(session, item.id, action="accept", note="渠道手续费差异，已与微信核实", staff_id=None)
    assert item.status == "resolved" and item.action == "accept"


def test_today_cannot_be_reconciled_yet(session, pay_server):
    with pytest.raises(PaymentInvalid):
        reconciliation.run(session, clock.today(), staff_id=None)
    assert session.scalars(select(PaymentOrder)).first() is None


def test_the_daily_task_reconciles_yesterday_once(session, day):
    from payments.models import ReconciliationRun
    from payments.tasks import reconcile_yesterday

    today, _ = day
    clock.freeze(datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=clock.BUSINESS_TZ)
                 + timedelta(hours=11))
    reconcile_yesterday()
    reconcile_yesterday()
    runs = list(session.scalars(select(ReconciliationRun)))
    assert len(runs) == 1 and runs[0].bill_date == today and runs[0].mismatched == 4
