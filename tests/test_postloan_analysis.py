"""Collections analysis: per group; the recovered amount and recovery rate beside the overdue rate by region and
industry; every figure within the viewer's data scope (a department manager sees their subtree only)."""

from __future__ import annotations

from core import clock
from crm.models import CustomerQualification
from lending.models import Loan
from lending.servicing import cob
from postloan import analysis, cases
from tests.factories import make_department, make_staff
from tests.lending_flow_support import V
from tests.servicing_support import days, on, pay
from tests.test_admin_support import console_client, log_in
from tests.test_postloan_allocation import D, _open, _setup


def _worked(session):
    w, loans, juniors, senior = _setup(session)
    on(D)
    cob.run_date(D)
    first, second = _open(session)
    holder = next(j for j in juniors if j.id == first.collector_staff_id)
    cases.record_outcome(session, first.id, viewer=V(holder), outcome="promise", promised_date=D + days(1),
                         promised_amount=first.overdue_amount)
    loan = session.get(Loan, first.loan_id)
    session.refresh(loan)
    pay(session, w, loan, first.overdue_amount)
    session.add(CustomerQualification(customer_id=first.customer_id, industry="批发零售", updated_at=clock.now()))
    session.flush()
    return w, first, second, holder


def test_by_group_counts_the_cases_of_each_group(session):
    w, first, second, _ = _worked(session)
    rows = {r.label: r for r in analysis.by_group(session, D - days(1), D)}
    junior = rows["M1 初级组"]
    assert (junior.cases, junior.contacted, junior.promised, junior.kept) == (2, 1, 1, 1)
    assert junior.recovered == first.overdue_amount and junior.still_overdue == second.overdue_amount
    assert junior.promise_rate == junior.contact_rate == junior._rate(1, 2)  # noqa: SLF001
    assert "M2+ 资深组" not in rows  # no M2 case yet


def test_overdue_by_region_and_industry_carries_recovered_and_recovery_rate(session):
    w, first, second, _ = _worked(session)
    by_industry = {r.label: r for r in analysis.overdue_by(session, "industry", D - days(1), D)}
    paid = by_industry["批发零售"]
    assert (paid.recovered, paid.recovery_rate) == (first.overdue_amount, 1)
    unpaid = by_industry["未填写"]
    assert (unpaid.recovered, unpaid.still_overdue, unpaid.recovery_rate) == (0, second.overdue_amount, 0)
    regions = analysis.overdue_by(session, "region", D - days(1), D)
    assert sum(r.recovered for r in regions) == first.overdue_amount
    assert analysis.overdue_by(session, "industry", D + days(1), D + days(2))[0].recovered == 0  # opened earlier


def test_the_analysis_is_limited_to_the_viewers_scope(session):
    w, first, second, holder = _worked(session)
    inside = make_staff(session, role="manager", department=w.manager.department, data_scope="department")
    outsider = make_staff(session, role="manager", department=make_department(session), data_scope="department")
    assert sum(r.cases for r in analysis.by_collector(session, D - days(1), D, viewer=V(inside))) == 2
    assert analysis.by_collector(session, D - days(1), D, viewer=V(outsider)) == []
    assert analysis.by_group(session, D - days(1), D, viewer=V(outsider)) == []
    assert all(r.loans == 0 and r.recovered == 0
               for r in analysis.overdue_by(session, "region", D - days(1), D, viewer=V(outsider)))
    client = console_client()
    log_in(client, session, outsider)
    session.commit()
    page = client.get(f"/console/collections/analysis?from={D - days(1)}&to={D}")
    assert page.status_code == 200 and holder.display_name not in page.text and "批发零售" not in page.text
    log_in(client, session, inside)
    session.commit()
    page = client.get(f"/console/collections/analysis?from={D - days(1)}&to={D}")
    assert holder.display_name in page.text and "回收率" in page.text
