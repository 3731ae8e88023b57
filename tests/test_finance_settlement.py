"""Deposits, the work list, settlement with discount, split payment, added fees, the customer's loan and
rebates, vouchers confirmed by three people, 结单 posted to the ledger; refusals change nothing."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core import clock
from core.db import unit_of_work
from core.errors import PermissionDenied
from finance import agreements, deposits, ledger, settlements
from finance.exceptions import AmountInvalid, FinanceInvalid, PeriodClosed, StateConflict
from finance.models import Account, Deposit, FeeType, JournalLine, Settlement
from finance.settlements import ChargeInput, NotDisbursed, SettlementTaken
from tests.finance_support import V, approved_agreement, make_world, working_agreement
from tests.test_exports_formula_injection import assert_no_formula_in_xlsx

DEC_10 = datetime(2026, 12, 10, 2, 0, tzinfo=UTC)


def bal(session, code):
    return session.scalar(select(Account.balance_amount).where(Account.code == code))


def lines(session):
    return session.scalar(select(func.count()).select_from(JournalLine))


# --- deposits ---------------------------------------------------------------------------------------------


def test_a_confirmed_deposit_is_held_and_puts_the_case_on_the_work_list(session):
    w = make_world(session)
    a = approved_agreement(session, w)
    assert deposits.work_list(session, V(w.officer)) == []
    held = bal(session, "deposits_held")
    d = deposits.record_deposit(session, a.id, amount=500_000, method="alipay", viewer=V(w.officer))
    assert d.status == "received" and bal(session, "deposits_held") == held  # not money yet
    deposits.confirm_deposit(session, d.id, viewer=V(w.finance))
    assert a.status == "working" and bal(session, "deposits_held") == held - 500_000
    assert [r[0].id for r in deposits.work_list(session, V(w.officer))] == [a.id]
    with pytest.raises(StateConflict):
        deposits.confirm_deposit(session, d.id, viewer=V(w.finance))


def test_deposit_needs_supervisor_approval_first(session):
    w = make_world(session)
    a = agreements.create_agreement(session, __import__("tests.finance_support", fromlist=["x"])
                                    .agreement_input(w), viewer=V(w.sales))
    with pytest.raises(StateConflict, match="主管审批"):
        deposits.record_deposit(session, a.id, amount=1000, method="cash", viewer=V(w.officer))


def test_refund_above_the_received_deposit_is_refused_and_writes_nothing(session):
    w = make_world(session)
    a = working_agreement(session, w, deposit_amount=300_000)
    d = deposits.deposits_of(session, a.id)[0]
    before = lines(session)
    with pytest.raises(FinanceInvalid) as exc:
        deposits.request_refund(session, d.id, amount=300_001, method="wechat", reason="客户不做了",
                                viewer=V(w.officer))
    assert "超过可退金额" in exc.value.message
    r1 = deposits.request_refund(session, d.id, amount=200_000, method="wechat", reason="部分退", viewer=V(w.officer))
    with pytest.raises(FinanceInvalid, match="超过可退金额"):  # 200,000 waiting: only 100,000 left
        deposits.request_refund(session, d.id, amount=100_001, method="wechat", reason="再退", viewer=V(w.officer))
    with pytest.raises(PermissionDenied):
        deposits.decide_refund(session, r1.id, accept=True, viewer=V(w.officer))
    deposits.decide_refund(session, r1.id, accept=True, viewer=V(w.finance))
    assert d.refunded_amount == 200_000 and lines(session) == before + 2
    assert deposits.held_amount(session, a.id) == 100_000
    assert ledger.run_check(session).ok


def test_a_voided_confirmed_deposit_is_reversed_and_the_case_leaves_the_work_list(session):
    w = make_world(session)
    a = working_agreement(session, w, deposit_amount=300_000)
    held = bal(session, "deposits_held")
    d = deposits.deposits_of(session, a.id)[0]
    deposits.void_deposit(session, d.id, reason="金额录错", viewer=V(w.finance))
    assert d.status == "voided" and bal(session, "deposits_held") == held + 300_000
    assert a.status == "approved"
    with pytest.raises(StateConflict):
        deposits.void_deposit(session, d.id, reason="again", viewer=V(w.finance))


def test_a_deposit_dated_in_a_closed_month_is_refused(session):
    clock.freeze(DEC_10)
    w = make_world(session)
    a = approved_agreement(session, w)
    ledger.close_period(session, date(2026, 11, 1), viewer=V(w.finance))
    d = deposits.record_deposit(session, a.id, amount=10_000, method="cash", viewer=V(w.officer),
                                received_date=date(2026, 11, 28))
    with pytest.raises(PeriodClosed, match="2026年11月已月结"), session.begin_nested():
        deposits.confirm_deposit(session, d.id, viewer=V(w.finance))
    session.refresh(d)
    assert d.status == "received" and d.journal_entry_id is None


@pytest.mark.parametrize("amount", [-100, 0, 12.5])
def test_negative_zero_or_fractional_deposits_are_refused(session, amount):
    w = make_world(session)
    a = approved_agreement(session, w)
    with pytest.raises(AmountInvalid):
        deposits.record_deposit(session, a.id, amount=amount, method="cash", viewer=V(w.officer))
    assert session.scalar(select(func.count()).select_from(Deposit)) == 0


# --- settlement -------------------------------------------------------------------------------------------


def visit_fee(session) -> FeeType:
    return session.scalar(select(FeeType).where(FeeType.name == "下户费"))


def test_settling_an_undisbursed_case_is_refused(session):
    w = make_world(session)
    a = working_agreement(session, w)
    with pytest.raises(NotDisbursed) as exc:
        settlements.of_agreement(session, V(w.finance), a.id)
    assert "尚未放款" in exc.value.message


def test_the_main_path_from_disbursement_to_settled(session):
    w = make_world(session)
    a = working_agreement(session, w, deposit_amount=500_000)
    loan = deposits.lend_to_customer(session, a.id, principal_amount=1_000_000, interest_amount=20_000,
                                     cost_amount=5_000, method="bank", viewer=V(w.finance))
    s = settlements.record_disbursement(session, a.id, funder_name="某城商行", funder_type="bank",
                                        amount=20_000_000, disbursed_date=None, viewer=V(w.finance))
    assert a.status == "disbursed" and s.status == "pending"
    # service fee 3% of 200,000 = 6,000; discount 10% = 600; other agreed fee 800; 下户费 300;
    # loan back 10,000 + 200 + 50; deposit 5,000 applied: due 6,000 − 600 + 800 + 300 + 10,250 − 5,000 = 11,750 元
    data = ChargeInput(expected_revision=0, discount_kind="percent", discount_rate=Decimal("0.10"), fees=[(visit_fee(session).id, 30_000)],
                       payments=[("wechat", 675_000), ("cash", 500_000)], rebates=[("渠道甲", 100_000)])
    settlements.charge(session, s.id, data, viewer=V(w.finance))
    assert (s.service_fee_amount, s.discount_amount, s.extra_fees_amount, s.loan_repaid_amount,
            s.deposit_applied_amount, s.total_due_amount) == (600_000, 60_000, 110_000, 1_025_000, 500_000, 1_175_000)
    with pytest.raises(StateConflict, match="尚未确认"):
        settlements.close(session, s.id, viewer=V(w.finance))
    with pytest.raises(FinanceInvalid, match="不是该案件的营销专员"):
        settlements.confirm_voucher(session, s.id, "sales", revision=s.revision, viewer=V(w.officer))
    settlements.confirm_voucher(session, s.id, "officer", revision=s.revision, viewer=V(w.officer))
    settlements.confirm_voucher(session, s.id, "supervisor", revision=s.revision, viewer=V(w.supervisor))
    settlements.confirm_voucher(session, s.id, "sales", revision=s.revision, viewer=V(w.sales))
    revenue, held, wechat = bal(session, "fee_revenue"), bal(session, "deposits_held"), bal(session, "wechat")
    settlements.close(session, s.id, viewer=V(w.finance))
    assert s.status == "settled" and a.status == "settled" and loan.status == "repaid"
    assert bal(session, "fee_revenue") == revenue - 650_000  # 6,000 − 600 + 800 + 300 (credit)
    assert bal(session, "deposits_held") == held + 500_000
    assert bal(session, "wechat") == wechat + 675_000
    assert bal(session, "customer_loans") == 0 and bal(session, "rebates_payable") == -100_000
    assert ledger.run_check(session).ok
    with pytest.raises(SettlementTaken, match="已被他人结单"):
        settlements.close(session, s.id, viewer=V(w.finance))


@pytest.mark.parametrize(("data", "words"), [
    (ChargeInput(discount_kind="fixed", discount_amount=600_001), "超过服务费"),
    (ChargeInput(discount_kind="percent", discount_rate=Decimal("1.5")), "优惠比例"),
    (ChargeInput(payments=[("wechat", 100)]), "与应收"),
    (ChargeInput(payments=[("wechat", 679_999)], rebates=[("甲", 10_000_000)]), "超过服务费收入"),
    (ChargeInput(payments=[("wechat", -5)]), "负数"),
])
def test_bad_charges_are_refused_and_change_nothing(session, data, words):
    w = make_world(session)
    a = working_agreement(session, w, deposit_amount=0 + 1)
    s = settlements.record_disbursement(session, a.id, funder_name="某消金", funder_type="consumer_finance",
                                        amount=20_000_000, disbursed_date=None, viewer=V(w.finance))
    with pytest.raises((FinanceInvalid, AmountInvalid)) as exc:
        settlements.charge(session, s.id, replace(data, expected_revision=s.revision), viewer=V(w.finance))
    assert words in exc.value.message
    session.refresh(s)
    assert s.status == "pending" and s.revision == 0


def test_a_new_charge_clears_the_confirmations(session):
    w = make_world(session)
    a = working_agreement(session, w, deposit_amount=80_000)
    s = settlements.record_disbursement(session, a.id, funder_name="某小贷", funder_type="microloan",
                                        amount=20_000_000, disbursed_date=None, viewer=V(w.finance))
    settlements.charge(session, s.id, ChargeInput(expected_revision=s.revision, payments=[("bank", 600_000)]), viewer=V(w.finance))
    seen = s.revision
    settlements.confirm_voucher(session, s.id, "officer", revision=seen, viewer=V(w.officer))
    settlements.charge(session, s.id, ChargeInput(expected_revision=s.revision, discount_kind="fixed", discount_amount=100_000,
                                                  payments=[("bank", 500_000)]), viewer=V(w.finance))
    assert s.officer_confirmed_at is None and s.revision == seen + 1
    with pytest.raises(StateConflict, match="收费已被财务修改"):
        settlements.confirm_voucher(session, s.id, "sales", revision=seen, viewer=V(w.sales))


def test_lending_disbursement_opens_the_settlement_through_the_hook(session, task_runner):
    from lending import disbursement
    from tests import lending_flow_support as lf

    lf.freeze()
    lw = lf.make_world(session)
    w = make_world(session)
    app = lf.advance_to(session, lw, lf.start(session, lw), "disbursement")
    from tests.finance_support import arrived

    arrived(session, lw.customer, lw.sales)
    w.sales, w.customer = lw.sales, lw.customer  # the lending world's salesperson and customer sign
    a = working_agreement(session, w, application_id=app.id)
    loan = disbursement.disburse(session, app.id, viewer=lf.V(lw.finance), funder_reference=f"REF-{app.id}")
    session.commit()
    task_runner.drain()
    s = settlements.settlement_for(session, a.id)
    assert s is not None and s.loan_id == loan.id and s.source == "lending"
    assert s.disbursed_amount == loan.principal_amount and s.status == "pending"
    session.refresh(a)
    assert a.status == "disbursed"
    settlements.on_loan_disbursed(session, loan.id)  # a re-delivery opens nothing new
    assert session.scalar(select(func.count()).select_from(Settlement)) == 1


# --- two clerks at once (real commits, concurrent sessions) ----------------------------------------------


def _race(fn_a, fn_b):
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def run(i, fn):
        barrier.wait()
        try:
            with unit_of_work() as s:
                fn(s)
            outcomes[i] = "ok"
        except Exception as exc:  # noqa: BLE001 - the loser's refusal is the point
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(0, fn_a)), threading.Thread(target=run, args=(1, fn_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def test_two_clerks_settling_the_same_case_exactly_one_wins(committed):
    with committed() as s, s.begin():
        w = make_world(s)
        a = working_agreement(s, w, deposit_amount=100_000)
        st = settlements.record_disbursement(s, a.id, funder_name="某银行", funder_type="bank", amount=20_000_000,
                                             disbursed_date=None, viewer=V(w.finance))
        settlements.charge(s, st.id, ChargeInput(expected_revision=st.revision, payments=[("bank", 300_000), ("cash", 300_000 + 80_000 - 100_000)]),
                           viewer=V(w.finance))
        for who, staff in (("officer", w.officer), ("supervisor", w.supervisor), ("sales", w.sales)):
            settlements.confirm_voucher(s, st.id, who, revision=st.revision, viewer=V(staff))
        viewer, settlement_id = V(w.finance), st.id
    outcomes = _race(lambda s: settlements.close(s, settlement_id, viewer=viewer),
                     lambda s: settlements.close(s, settlement_id, viewer=viewer))
    assert sorted(o == "ok" for o in outcomes) == [False, True], outcomes
    loser = next(o for o in outcomes if o != "ok")
    assert isinstance(loser, SettlementTaken) and "已被他人结单" in loser.message
    with committed() as s:
        assert s.scalar(select(func.count()).select_from(JournalLine).where(
            JournalLine.entry_id == s.scalar(select(Settlement.journal_entry_id).where(Settlement.id == settlement_id)))) > 0
        assert s.scalar(select(func.count()).select_from(__import__("finance.models", fromlist=["x"]).JournalEntry)
                        .where(__import__("finance.models", fromlist=["x"]).JournalEntry.source_type == "settlement")) == 1
        assert ledger.run_check(s).ok


def test_two_clerks_confirming_the_same_deposit_exactly_one_wins(committed):
    with committed() as s, s.begin():
        w = make_world(s)
        a = approved_agreement(s, w)
        d = deposits.record_deposit(s, a.id, amount=500_000, method="wechat", viewer=V(w.officer))
        viewer, deposit_id = V(w.finance), d.id
    outcomes = _race(lambda s: deposits.confirm_deposit(s, deposit_id, viewer=viewer),
                     lambda s: deposits.confirm_deposit(s, deposit_id, viewer=viewer))
    assert sorted(o == "ok" for o in outcomes) == [False, True], outcomes
    loser = next(o for o in outcomes if o != "ok")
    assert isinstance(loser, StateConflict) and "已被确认" in loser.message
    with committed() as s:
        assert ledger.run_check(s).ok
        assert deposits.held_amount(s, a.id) == 500_000


def test_the_settlement_export_is_an_xlsx_whose_text_cannot_become_a_formula(session, tmp_path):
    from openpyxl import load_workbook

    from finance import export

    w = make_world(session)
    w.customer.name = "=HYPERLINK(\"http://x\")"
    session.flush()
    a = working_agreement(session, w, deposit_amount=100_000)
    s = settlements.record_disbursement(session, a.id, funder_name="@某银行", funder_type="bank", amount=20_000_000,
                                        disbursed_date=None, viewer=V(w.finance))
    settlements.charge(session, s.id, ChargeInput(expected_revision=s.revision, payments=[("bank", 580_000)]), viewer=V(w.finance))
    path = tmp_path / "s.xlsx"
    assert export.export_settlements(session, V(w.finance), str(path)) == 1
    sheet = load_workbook(path).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("结算编号", "协议编号", "客户")
    assert rows[1][2] == "=HYPERLINK(\"http://x\")" and rows[1][4] == "@某银行"  # text, as typed
    assert_no_formula_in_xlsx(path.read_bytes())  # no formula element (<f>, <f t=…>) in any sheet
    assert rows[1][6] == 200_000 and rows[1][15] == 5_800  # yuan, as numbers
    cells = list(sheet.iter_rows(min_row=2, max_row=2))[0]
    assert cells[2].data_type == "s"
    assert export.export_settlements(session, V(w.other_sales), str(tmp_path / "none.xlsx")) == 0  # scoped
