"""Extension (展期) and restructure (重组): the principal not yet due over new periods, maker-checker, the old
schedule kept as a version, the cost cap checked on the new terms; refused with nothing written on a closed loan,
a partly paid current period, new terms above the cap, by the requester or a role without the authority."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from core.errors import PermissionDenied
from lending.models import Restructure, ScheduleVersion
from lending.schedule.cap import AprAboveCap
from lending.servicing import repayments, restructures, state
from lending.servicing.exceptions import LoanClosed, RestructureDecided, RestructureInvalid
from tests.lending_flow_support import V
from tests.servicing_support import make_loan, on, pay, rows

P1, I1 = 94_619, 12_000


def _penalty(days: int) -> int:
    """0.05% a day on the overdue first principal, rounded once half-up."""
    from decimal import ROUND_HALF_UP, Decimal

    return int((Decimal(P1) * Decimal("0.0005") * days).quantize(Decimal(1), ROUND_HALF_UP))


def _count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_an_approved_extension_spreads_the_balance_over_more_periods_and_keeps_the_old_schedule(session):
    w, loan = make_loan(session)
    on(date(2026, 12, 23))
    pay(session, w, loan, P1 + I1)
    on(date(2027, 1, 10))
    before = [(r.number, r.due_date, r.principal_amount) for r in rows(session, loan)]
    asked = restructures.request(session, loan.id, viewer=V(w.sales), kind="extension", extra_periods=6,
                                 reason="客户收入下降，申请展期 6 期")
    assert (asked.status, asked.first_period, asked.periods, asked.balance_amount) == \
        ("requested", 2, 17, 1_200_000 - P1)
    assert len(rows(session, loan)) == 12  # nothing changes before the approval
    with pytest.raises(PermissionDenied):
        restructures.approve(session, asked.id, viewer=V(w.sales))  # the requester (and a role without authority)
    done = restructures.approve(session, asked.id, viewer=V(w.manager), note="同意")
    assert done.status == "approved" and done.schedule_version_id is not None
    after = rows(session, loan)
    assert len(after) == 18 and after[-1].due_date == date(2028, 5, 23)
    assert (after[0].number, after[0].status, after[0].principal_amount) == (1, "paid", P1)  # the past kept
    assert sum(r.principal_amount for r in after[1:]) == 1_200_000 - P1
    assert after[1].principal_amount + after[1].interest_amount < P1 + I1  # a lower installment
    history = session.scalars(select(ScheduleVersion).where(ScheduleVersion.loan_id == loan.id)
                              .order_by(ScheduleVersion.version)).all()
    assert [v.reason for v in history] == ["original", "extension"]
    assert [(r["number"], r["principal"]) for r in history[0].rows] == [(n, p) for n, _, p in before]
    with pytest.raises(RestructureDecided):
        restructures.reject(session, asked.id, viewer=V(w.manager))
    # the new version is the base of what follows: a prepayment keeping the (extended) term
    repayments.record_repayment(session, loan.id, viewer=V(w.finance), amount=300_000, external_reference="PRE-X",
                                prepayment_mode="keep_term")
    again = rows(session, loan)
    assert len(again) == 18 and again[-1].due_date == date(2028, 5, 23)
    assert sum(r.principal_amount for r in again) == 1_200_000


def test_refusals_write_nothing(session):
    w, loan = make_loan(session, service_fee_amount=4_000)
    for row in rows(session, loan)[:10]:
        on(row.due_date)
        pay(session, w, loan, row.principal_amount + row.interest_amount + row.fee_amount)
    on(date(2027, 9, 25))
    pay(session, w, loan, 100)  # the current period (11) partly paid
    with pytest.raises(RestructureInvalid, match="部分还款"):
        restructures.request(session, loan.id, viewer=V(w.sales), kind="extension", extra_periods=2, reason="展期")
    w2, loan2 = make_loan(session, service_fee_amount=4_000)
    for row in rows(session, loan2)[:10]:
        on(row.due_date)
        pay(session, w2, loan2, row.principal_amount + row.interest_amount + row.fee_amount)
    on(date(2027, 9, 25))
    # 40.00 a period on about 2,100 yuan over 6 periods: far above the 24% cap
    with pytest.raises(AprAboveCap):
        restructures.request(session, loan2.id, viewer=V(w2.sales), kind="extension", extra_periods=4, reason="展期")
    with pytest.raises(RestructureInvalid, match="期数"):
        restructures.request(session, loan2.id, viewer=V(w2.sales), kind="restructure", periods=0, reason="重组")
    with pytest.raises(RestructureInvalid, match="原因"):
        restructures.request(session, loan2.id, viewer=V(w2.sales), kind="restructure", periods=2, reason=" ")
    for row in rows(session, loan2)[10:]:
        on(row.due_date)
        pay(session, w2, loan2, row.principal_amount + row.interest_amount + row.fee_amount)
    with pytest.raises(LoanClosed):
        restructures.request(session, loan2.id, viewer=V(w2.sales), kind="extension", extra_periods=1, reason="展期")
    assert _count(session, Restructure) == 0 and _count(session, ScheduleVersion) == 0


def test_a_restructure_at_a_new_rate_rewrites_the_open_periods_and_stays_the_loans_rate(session):
    from decimal import Decimal

    from lending.servicing import versions

    w, loan = make_loan(session)
    on(date(2026, 12, 23))
    pay(session, w, loan, P1 + I1)
    on(date(2027, 1, 10))
    asked = restructures.request(session, loan.id, viewer=V(w.sales), kind="restructure", periods=11,
                                 annual_rate=Decimal("0.06"), reason="客户申请降息重组")
    assert (asked.annual_rate, asked.capitalised_amount, asked.first_period) == (Decimal("0.06"), 0, 2)
    assert rows(session, loan)[1].interest_amount == 11_054  # 12% a year still: nothing changes before the approval
    restructures.approve(session, asked.id, viewer=V(w.risk))
    after = rows(session, loan)
    balance = 1_200_000 - P1
    assert len(after) == 12 and sum(r.principal_amount for r in after[1:]) == balance
    assert after[1].interest_amount == round(balance * Decimal("0.005"))  # 6% a year: half a percent a month
    assert (after[0].status, after[0].principal_amount) == ("paid", P1)
    assert versions.loan_terms(session, loan).annual_rate == Decimal("0.06")  # what a prepayment accrues at now
    history = session.scalars(select(ScheduleVersion).where(ScheduleVersion.loan_id == loan.id)
                              .order_by(ScheduleVersion.version)).all()
    assert [v.reason for v in history] == ["original", "restructure"]


def test_a_restructure_capitalising_the_overdue_amounts_makes_the_loan_current(session):
    from lending.models import Loan, Repayment

    w, loan = make_loan(session)  # 0.05% a day penalty on the overdue principal
    on(date(2027, 1, 10))  # the first bill (2026-12-23) unpaid: 18 days overdue
    state.refresh(session, loan)  # what the nightly close does
    assert (loan.bucket, rows(session, loan)[0].status) == ("M1", "overdue")
    asked = restructures.request(session, loan.id, viewer=V(w.sales), kind="restructure", periods=12,
                                 capitalise=True, reason="逾期客户重组，逾期本息罚息计入本金")
    assert asked.capitalised_amount == P1 + I1 + _penalty(18)
    on(date(2027, 1, 12))  # approved two days later: the penalty of those days is capitalised too
    done = restructures.approve(session, asked.id, viewer=V(w.manager), note="同意")
    capitalised = P1 + I1 + _penalty(20)
    assert done.capitalised_amount == capitalised and done.capitalisation_id is not None
    entry = session.get(Repayment, done.capitalisation_id)
    assert (entry.kind, entry.purpose, entry.amount) == ("capitalisation", "capitalisation", capitalised)
    after = rows(session, loan)
    assert (after[0].status, after[0].outstanding_amount) == ("paid", 0)
    assert sum(r.principal_amount for r in after[1:]) == 1_200_000 - P1 + capitalised == done.balance_amount
    assert len(after) == 13
    session.refresh(loan)
    assert (loan.bucket, loan.overdue_days) == ("C", 0)
    version = session.scalar(select(ScheduleVersion).where(ScheduleVersion.loan_id == loan.id,
                                                           ScheduleVersion.reason == "restructure"))
    assert version.repayment_id == entry.id
    with pytest.raises(Exception, match="资本化不能冲正"):
        repayments.reverse_repayment(session, entry.id, viewer=V(w.finance), reason="x")
    # the next payment pays the new schedule
    on(after[1].due_date)
    pay(session, w, loan, after[1].due_amount)
    assert rows(session, loan)[1].status == "paid"
    assert session.get(Loan, loan.id).bucket == "C"


def test_restructure_refusals_on_rate_and_capitalisation_write_nothing(session, monkeypatch):
    from decimal import Decimal

    from lending.models import Repayment
    from lending.schedule import cap

    w, loan = make_loan(session)
    on(date(2026, 12, 23))
    pay(session, w, loan, P1 + I1)
    on(date(2027, 1, 10))
    with pytest.raises(RestructureInvalid, match="展期沿用原利率"):
        restructures.request(session, loan.id, viewer=V(w.sales), kind="extension", extra_periods=2,
                             annual_rate=Decimal("0.08"), reason="x")
    with pytest.raises(RestructureInvalid, match="0–36%"):
        restructures.request(session, loan.id, viewer=V(w.sales), kind="restructure", periods=6,
                             annual_rate=Decimal("-0.01"), reason="x")
    with pytest.raises(RestructureInvalid, match="只能随重组"):
        restructures.request(session, loan.id, viewer=V(w.sales), kind="extension", extra_periods=2,
                             capitalise=True, reason="x")
    with pytest.raises(RestructureInvalid, match="没有逾期"):
        restructures.request(session, loan.id, viewer=V(w.sales), kind="restructure", periods=6, capitalise=True,
                             reason="x")
    with pytest.raises(AprAboveCap):  # the new rate alone is above the 24% cap
        restructures.request(session, loan.id, viewer=V(w.sales), kind="restructure", periods=6,
                             annual_rate=Decimal("0.30"), reason="x")
    asked = restructures.request(session, loan.id, viewer=V(w.sales), kind="restructure", periods=6,
                                 annual_rate=Decimal("0.20"), reason="x")
    monkeypatch.setattr(cap, "apr_cap", lambda: Decimal("0.18"))  # the cap lowered before the approval
    versions_before = _count(session, ScheduleVersion)
    with pytest.raises(AprAboveCap):
        restructures.approve(session, asked.id, viewer=V(w.manager))
    session.refresh(asked)
    assert asked.status == "requested" and _count(session, ScheduleVersion) == versions_before
    assert _count(session, Repayment) == 1 and len(rows(session, loan)) == 12


def test_a_matured_overdue_loan_is_restructured_only_by_capitalising_what_it_owes(session):
    w, loan = make_loan(session)
    on(date(2027, 12, 1))  # every period due (the last on 2027-11-23), nothing paid
    state.refresh(session, loan)
    with pytest.raises(RestructureInvalid, match="没有未到期"):
        restructures.request(session, loan.id, viewer=V(w.sales), kind="restructure", periods=6, reason="重组")
    asked = restructures.request(session, loan.id, viewer=V(w.sales), kind="restructure", periods=6,
                                 capitalise=True, reason="到期未还，协商重组")
    assert asked.first_period == 13
    owed = sum(r.outstanding_amount for r in rows(session, loan))
    restructures.approve(session, asked.id, viewer=V(w.manager))
    after = rows(session, loan)
    assert len(after) == 18 and all(r.status == "paid" for r in after[:12])
    assert sum(r.principal_amount for r in after[12:]) == asked.capitalised_amount == owed
    assert after[12].due_date == date(2028, 1, 1)  # a month from the restructure day
    session.refresh(loan)
    assert (loan.status, loan.bucket) == ("active", "C")
