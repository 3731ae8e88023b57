"""Payments → finance (purpose ``finance.fee``): a deposit (定金) the customer pays in the mini-program through
WeChat Pay (JSAPI at the simulator, signed notification over real HTTP) lands once as a confirmed deposit,
posted, in the transaction that marks the payment applied; its refund goes back the way it came and the
refund notification (verified, idempotent) finishes the deposit refund."""

import pytest
from sqlalchemy import func, select

from finance import deposits, payment_purposes
from finance.exceptions import StateConflict
from finance.models import Agreement, Deposit, DepositRefund, JournalEntry
from miniprogram_api.models import MpSession
from payments import orders, refunds
from payments.exceptions import PaymentInvalid
from payments.models import PaymentNotification, PaymentOrder, PaymentRefund
from tests.finance_support import V, approved_agreement, make_world


def _entries(session, source_type):
    return session.scalar(select(func.count()).select_from(JournalEntry).where(JournalEntry.source_type == source_type))


def _debited(session, source_type):
    """(account code, debit) of the debit lines of the entries of ``source_type``."""
    from finance.models import Account, JournalLine

    return session.execute(select(Account.code, JournalLine.debit_amount)
                           .join(JournalLine, JournalLine.account_id == Account.id)
                           .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
                           .where(JournalEntry.source_type == source_type, JournalLine.debit_amount > 0)).all()


@pytest.fixture
def case(session, mp, pay_server):
    """An approved agreement (on the deposit list, 定金 5,000 元) of the customer logged in to the mini-program."""
    mp.login("alice")
    w = make_world(session)
    customer_id = session.scalar(select(MpSession.customer_id).order_by(MpSession.id.desc()))
    agreement = approved_agreement(session, w)
    agreement.customer_id = customer_id
    session.commit()
    return w, agreement


def _paid_online(session, mp, pay_server, task_runner, agreement):
    body = mp.post(f"/fees/deposit/{agreement.id}/pay").json()
    pay_server.pay(body["out_trade_no"])
    task_runner.drain()
    session.expire_all()
    return session.scalar(select(Deposit).where(Deposit.reference == body["out_trade_no"])), body


def test_a_deposit_paid_in_the_mini_program_lands_once_as_a_confirmed_posted_deposit(session, mp, case, pay_server,
                                                                                   task_runner):
    w, agreement = case
    fees = mp.get("/fees").json()["fees"]
    assert fees == [{"agreement_id": agreement.id, "settlement_id": None, "kind": "deposit",
                     "title": f"定金（协议 {agreement.number}）", "amount": "5000.00"}]
    body = mp.post(f"/fees/deposit/{agreement.id}/pay").json()
    assert body["amount"] == "5000.00" and body["pay_params"]["package"].startswith("prepay_id=")
    assert mp.post(f"/fees/deposit/{agreement.id}/pay").json()["out_trade_no"] == body["out_trade_no"]  # double tap
    assert pay_server.pay(body["out_trade_no"])["deliveries"] == [204]
    task_runner.drain()
    session.expire_all()
    order = session.scalar(select(PaymentOrder).where(PaymentOrder.out_trade_no == body["out_trade_no"]))
    deposit = session.scalar(select(Deposit).where(Deposit.payment_order_id == order.id))
    assert (order.status, order.applied_ref) == ("succeeded", f"finance_deposit:{deposit.id}")
    assert (deposit.status, deposit.amount, deposit.method) == ("confirmed", 500_000, "wechat")
    assert deposit.journal_entry_id is not None and _entries(session, "deposit") == 1
    assert session.get(Agreement, agreement.id).status == "working"  # into the case officer's work list
    assert mp.get(f"/payments/{body['out_trade_no']}").json()["message"] == "支付成功"
    assert mp.get("/fees").json()["fees"] == []  # nothing more due
    # WeChat's re-deliveries, the same request again, a replay (a used nonce, another body) and a poll
    # change nothing.
    assert pay_server.notify(body["out_trade_no"], copies=2) == [204, 204]
    assert pay_server.notify(body["out_trade_no"], replay=True) == [204, 204]
    assert pay_server.notify(body["out_trade_no"], reuse_nonce=True) == [204, 403]
    task_runner.drain()
    assert orders.poll(session, order.id) is False
    session.commit()
    assert session.scalar(select(func.count()).select_from(Deposit).where(Deposit.agreement_id == agreement.id)) == 1
    assert _entries(session, "deposit") == 1
    with pytest.raises(StateConflict, match="不能作废"):  # money that came through WeChat Pay is refunded, not voided
        deposits.void_deposit(session, deposit.id, reason="录错了", viewer=V(w.finance))


def test_a_deposit_payment_the_agreement_no_longer_takes_is_held_for_review(session, mp, case, pay_server,
                                                                          task_runner):
    w, agreement = case
    body = mp.post(f"/fees/deposit/{agreement.id}/pay").json()
    # Meanwhile the deposit was taken in cash at the branch: nothing is due any more.
    d = deposits.record_deposit(session, agreement.id, amount=500_000, method="cash", viewer=V(w.officer))
    deposits.confirm_deposit(session, d.id, viewer=V(w.finance))
    session.commit()
    pay_server.pay(body["out_trade_no"])
    task_runner.drain()
    session.expire_all()
    order = session.scalar(select(PaymentOrder).where(PaymentOrder.out_trade_no == body["out_trade_no"]))
    assert order.status == "review" and "超过" in order.review_reason and order.applied_at is None
    assert session.scalar(select(func.count()).select_from(Deposit).where(Deposit.payment_order_id == order.id)) == 0
    assert _entries(session, "deposit") == 1  # the cash deposit only


def test_a_refund_of_an_online_deposit_goes_back_the_way_it_came_once(session, mp, case, pay_server, task_runner):
    w, agreement = case
    deposit, body = _paid_online(session, mp, pay_server, task_runner, agreement)
    refund = deposits.request_refund(session, deposit.id, amount=200_000, method="wechat", reason="客户放弃部分",
                                     viewer=V(w.officer))
    session.commit()
    pay_server.admin("refund_next", {"outcomes": ["processing"]})
    deposits.decide_refund(session, refund.id, accept=True, viewer=V(w.finance))
    session.commit()
    session.expire_all()
    refund = session.get(DepositRefund, refund.id)
    assert (refund.status, refund.journal_entry_id) == ("refunding", None)
    assert session.get(Deposit, deposit.id).refunded_amount == 0
    with pytest.raises(Exception, match="可退金额"):  # the refund under way is not refundable again
        deposits.request_refund(session, deposit.id, amount=400_000, method="wechat", reason="再退",
                                viewer=V(w.officer))
    session.rollback()
    sim_refund = pay_server.state()["refunds"][0]
    assert (sim_refund["out_refund_no"], sim_refund["status"]) == (refund.out_refund_no, "PROCESSING")
    # A forged refund notification is refused and stores nothing.
    notifications = session.scalar(select(func.count()).select_from(PaymentNotification))
    settled = pay_server.admin("refund_settle", {"out_refund_no": refund.out_refund_no, "notify": False})
    assert settled["status"] == "SUCCESS"
    assert pay_server.admin("notify_refund", {"out_refund_no": refund.out_refund_no,
                                              "forge": "signature"})["deliveries"] == [401]
    assert session.scalar(select(func.count()).select_from(PaymentNotification)) == notifications
    # The real one, re-delivered and sent again byte for byte: applied once.
    assert pay_server.admin("notify_refund", {"out_refund_no": refund.out_refund_no, "copies": 2,
                                              "replay": True})["deliveries"] == [204, 204, 204, 204]
    task_runner.drain()
    session.expire_all()
    refund = session.get(DepositRefund, refund.id)
    assert refund.status == "confirmed" and refund.journal_entry_id is not None
    assert session.get(Deposit, deposit.id).refunded_amount == 200_000
    assert _entries(session, "refund") == 1
    row = session.scalar(select(PaymentRefund).where(PaymentRefund.out_refund_no == refund.out_refund_no))
    assert (row.status, row.provider_status, row.refund_ref) == ("succeeded", "SUCCESS",
                                                                 f"finance_deposit_refund:{refund.id}")
    assert refunds.poll(session, row.id) is False
    order = session.scalar(select(PaymentOrder).where(PaymentOrder.out_trade_no == body["out_trade_no"]))
    assert order.status == "succeeded"  # a part refunded; the order keeps its state, the refund is its row


def test_a_refund_the_provider_cannot_complete_leaves_the_deposit_held(session, mp, case, pay_server, task_runner):
    w, agreement = case
    deposit, _ = _paid_online(session, mp, pay_server, task_runner, agreement)
    refund = deposits.request_refund(session, deposit.id, amount=500_000, method="wechat", reason="不做了",
                                     viewer=V(w.officer))
    session.commit()
    pay_server.admin("refund_next", {"outcomes": ["processing"]})
    deposits.decide_refund(session, refund.id, accept=True, viewer=V(w.finance))
    session.commit()
    out_refund_no = session.get(DepositRefund, refund.id).out_refund_no
    assert pay_server.admin("refund_settle", {"out_refund_no": out_refund_no, "outcome": "abnormal"})["deliveries"] \
        == [204]
    task_runner.drain()
    session.expire_all()
    assert session.get(DepositRefund, refund.id).status == "failed"
    assert session.get(Deposit, deposit.id).refunded_amount == 0 and _entries(session, "refund") == 0
    assert deposits.held_amount(session, agreement.id) == 500_000
    again = deposits.request_refund(session, deposit.id, amount=500_000, method="wechat", reason="再退一次",
                                    viewer=V(w.officer))
    deposits.decide_refund(session, again.id, accept=True, viewer=V(w.finance))  # the simulator answers SUCCESS
    session.commit()
    session.expire_all()
    assert session.get(DepositRefund, again.id).status == "confirmed"
    assert session.get(Deposit, deposit.id).refunded_amount == 500_000 and _entries(session, "refund") == 1
    # WeChat Pay notifies even a refund done at once: nothing new.
    assert pay_server.admin("notify_refund", {"out_refund_no": session.get(DepositRefund, again.id).out_refund_no}
                            )["deliveries"] == [204]
    task_runner.drain()
    session.expire_all()
    assert session.get(Deposit, deposit.id).refunded_amount == 500_000 and _entries(session, "refund") == 1


def test_a_refund_above_what_the_payment_left_is_refused_and_nothing_is_written(session, mp, case, pay_server,
                                                                              task_runner):
    _, agreement = case
    deposit, _ = _paid_online(session, mp, pay_server, task_runner, agreement)
    with pytest.raises(PaymentInvalid, match="可退金额"):
        refunds.request(session, deposit.payment_order_id, amount=500_001, reason="多退", out_refund_no="TESTR1",
                        refund_ref="test", staff_id=None)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(PaymentRefund)) == 0
    assert pay_server.state()["refunds"] == []


def test_the_fee_purpose_is_registered_with_payments():
    from payments import purposes

    assert purposes.get(payment_purposes.PURPOSE).on_refund is payment_purposes.on_refund
    assert purposes.label("finance.fee") == "服务费/定金"


def test_the_settlement_fee_paid_online_is_applied_at_settlement(session, mp, case, pay_server, task_runner):
    from finance import ledger, settlements
    from finance.models import Account, Settlement, SettlementPayment
    from finance.settlements import ChargeInput

    w, agreement = case
    _paid_online(session, mp, pay_server, task_runner, agreement)  # the 5,000 元 deposit
    s = settlements.record_disbursement(session, agreement.id, funder_name="某银行", funder_type="bank",
                                        amount=20_000_000, disbursed_date=None, viewer=V(w.finance))
    due = settlements.compute(session, s, ChargeInput()).total_due_amount
    settlements.charge(session, s.id, ChargeInput(expected_revision=s.revision, payments=[("wechat", 100_000), ("bank", due - 100_000)]),
                       viewer=V(w.finance))
    session.commit()
    fee = [f for f in mp.get("/fees").json()["fees"] if f["kind"] == "settlement"]
    assert fee == [{"agreement_id": agreement.id, "settlement_id": s.id, "kind": "settlement",
                    "title": f"服务费（协议 {agreement.number}）", "amount": "1000.00"}]
    body = mp.post(f"/fees/settlement/{s.id}/pay").json()
    pay_server.pay(body["out_trade_no"])
    assert pay_server.notify(body["out_trade_no"], copies=2) == [204, 204]
    task_runner.drain()
    session.expire_all()
    line = session.scalar(select(SettlementPayment).where(SettlementPayment.method == "wechat"))
    order = session.scalar(select(PaymentOrder).where(PaymentOrder.out_trade_no == body["out_trade_no"]))
    assert line.payment_order_id == order.id and order.applied_ref == f"finance_settlement_payment:{line.id}"
    assert _entries(session, "settlement_payment") == 1
    assert _debited(session, "settlement_payment") == [("wechat", 100_000)]  # Dr 微信账户
    assert [f for f in mp.get("/fees").json()["fees"] if f["kind"] == "settlement"] == []
    with pytest.raises(StateConflict, match="不能再修改收费"):
        settlements.charge(session, s.id, ChargeInput(expected_revision=s.revision, payments=[("bank", due)]), viewer=V(w.finance))
    session.rollback()
    s = session.get(Settlement, s.id)
    for who, staff in (("officer", w.officer), ("supervisor", w.supervisor), ("sales", w.sales)):
        settlements.confirm_voucher(session, s.id, who, revision=s.revision, viewer=V(staff))
    settlements.close(session, s.id, viewer=V(w.finance))
    session.commit()
    held = session.scalar(select(Account.balance_amount).where(Account.code == "deposits_held"))
    assert held == 0  # the deposit and the online part both applied at 结单
    assert ledger.run_check(session).ok


def test_the_settlement_fee_is_withheld_under_the_customers_authorisation_and_applied_once(
        session, mp, case, pay_server, task_runner):
    from finance import settlements
    from finance.models import SettlementPayment
    from finance.settlements import ChargeInput
    from payments import withholding
    from payments.exceptions import AuthorizationMissing
    from tests.test_admin_support import console_client, log_in

    w, agreement = case
    _paid_online(session, mp, pay_server, task_runner, agreement)  # the deposit
    s = settlements.record_disbursement(session, agreement.id, funder_name="某银行", funder_type="bank",
                                        amount=20_000_000, disbursed_date=None, viewer=V(w.finance))
    due = settlements.compute(session, s, ChargeInput()).total_due_amount
    settlements.charge(session, s.id, ChargeInput(expected_revision=s.revision, payments=[("wechat", 100_000), ("bank", due - 100_000)]),
                       viewer=V(w.finance))
    with pytest.raises(AuthorizationMissing):  # no authorisation covering finance.fee yet: nothing written
        payment_purposes.withhold_settlement(session, s, staff_id=w.finance.id)
    withholding.authorize(session, customer_id=agreement.customer_id, account_no="6222020200112233445",
                          holder_name="王先生", bank_name="工商银行", signed_via="console", scope=["finance.fee"],
                          max_amount=500_000)
    session.commit()
    client = console_client()
    log_in(client, session, w.finance)
    page = client.get(f"/console/finance/settlements/{s.id}")
    assert "代扣服务费" in page.text and "1,000.00" in page.text
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    answer = client.post(f"/console/finance/settlements/{s.id}/withhold", data={"csrf_token": csrf},
                         follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].endswith("done=withholding")
    task_runner.drain()  # payments.submit_withholding
    session.expire_all()
    order = session.scalar(select(PaymentOrder).where(PaymentOrder.method == "withholding"))
    assert (order.purpose, order.obligation_ref, order.total_amount) == ("finance.fee", f"settlement:{s.id}:{s.revision}",
                                                                         100_000)
    assert pay_server.notify(order.out_trade_no, copies=2) == [204, 204]
    task_runner.drain()
    session.expire_all()
    line = session.scalar(select(SettlementPayment).where(SettlementPayment.method == "wechat"))
    order = session.get(PaymentOrder, order.id)
    assert order.status == "succeeded" and line.payment_order_id == order.id
    assert _entries(session, "settlement_payment") == 1
    assert _debited(session, "settlement_payment") == [("withholding", 100_000)]  # Dr 代扣账户, not 微信账户
    page = client.get(f"/console/finance/settlements/{s.id}")
    assert "发起代扣" not in page.text  # nothing left to withhold
