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
from lending.servicing import repayments, restructures
from lending.servicing.exceptions import LoanClosed, RestructureDecided, RestructureInvalid
from tests.lending_flow_support import V
from tests.servicing_support import make_loan, on, pay, rows

P1, I1 = 94_619, 12_000


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
