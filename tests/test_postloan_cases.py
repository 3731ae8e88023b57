"""Collection cases: opened by the nightly run (one per overdue loan), allocated, worked (one-click outcomes,
promises), closed on cure or write-off; out of scope is 404; of two collectors taking one case, one wins."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from core import db
from core.errors import PermissionDenied
from lending.models import Loan
from lending.servicing import cob
from postloan import cases
from postloan.exceptions import CaseNotFound, CaseTaken, CollectionInvalid
from postloan.models import CollectionAction, CollectionCase
from tests.factories import make_staff
from tests.lending_flow_support import V
from tests.servicing_support import days, make_loan, on, pay, rows

DUE = date(2026, 12, 23)
D = DUE + days(10)


def _open_cases(session):
    return list(session.scalars(select(CollectionCase).where(CollectionCase.status == "open")
                                .order_by(CollectionCase.id)))


def _two_overdue(session, *, collectors: int = 2):
    w, first = make_loan(session)
    _, second = make_loan(session)
    staff = [make_staff(session, role="collector", department=w.manager.department, data_scope="own",
                        display_name=f"催收{n}") for n in range(collectors)]
    on(D)
    cob.run_date(D)
    return w, [first, second], staff


def test_the_nightly_run_opens_one_case_per_overdue_loan_balanced_over_collectors(session):
    w, loans, (a, b) = _two_overdue(session)
    opened = _open_cases(session)
    assert [c.loan_id for c in opened] == [loan.id for loan in loans]
    assert sorted(c.collector_staff_id for c in opened) == sorted([a.id, b.id])  # one each
    case = opened[0]
    assert (case.bucket, case.overdue_days, case.risk_tier) == ("M1", 10, "low")
    assert case.overdue_amount == rows(session, loans[0])[0].outstanding_amount > 0
    mirrored = session.scalar(select(Loan.collector_staff_id).where(Loan.id == case.loan_id))
    assert mirrored == case.collector_staff_id  # lending's data scope reads the loan's column
    on(D + days(1))
    cob.run_date(D + days(1))  # the next night: the same cases, refreshed, none opened twice
    assert [c.id for c in _open_cases(session)] == [c.id for c in opened]
    session.refresh(case)
    assert case.overdue_days == 11
    assert session.scalar(select(func.count()).select_from(CollectionCase)) == 2


def test_a_collector_works_a_case_with_one_click_and_a_cure_closes_it(session):
    w, loans, (a, b) = _two_overdue(session)
    case = next(c for c in _open_cases(session) if c.collector_staff_id == a.id)
    with pytest.raises(CaseNotFound):  # another collector's case: not found
        cases.get_case(session, V(b), case.id)
    with pytest.raises(CaseNotFound):
        cases.record_outcome(session, case.id, viewer=V(b), outcome="unreachable")
    with pytest.raises(PermissionDenied):
        cases.get_case(session, V(w.sales), case.id)
    cases.record_outcome(session, case.id, viewer=V(a), outcome="wrong_number")
    with pytest.raises(CollectionInvalid):  # a promise needs its date and amount; nothing written
        cases.record_outcome(session, case.id, viewer=V(a), outcome="promise")
    with pytest.raises(CollectionInvalid):
        cases.record_outcome(session, case.id, viewer=V(a), outcome="shouted")
    promise = cases.record_promise(session, case.id, viewer=V(a), promised_date=D + days(3),
                                   promised_amount=case.overdue_amount)
    assert (promise.case_id, promise.status) == (case.id, "open")
    kinds = [(h.kind, h.outcome) for h in cases.history_of(session, case)]
    assert kinds == [("promise", "承诺还款"), ("call", "号码错误"), ("assign", None)]
    loan = session.get(Loan, case.loan_id)
    session.refresh(loan)
    pay(session, w, loan, case.overdue_amount)
    session.refresh(case)
    assert (case.status, case.close_reason) == ("closed", "cured")
    session.refresh(promise)
    assert promise.status == "kept"
    with pytest.raises(Exception, match="已结案"):
        cases.record_outcome(session, case.id, viewer=V(a), outcome="unreachable")


def test_only_a_manager_writes_a_case_off(session):
    w, _, (a, _) = _two_overdue(session)
    case = next(c for c in _open_cases(session) if c.collector_staff_id == a.id)
    with pytest.raises(CollectionInvalid):
        cases.close_case(session, case.id, "written_off", viewer=V(a))
    with pytest.raises(CollectionInvalid):  # still overdue: not cured
        cases.close_case(session, case.id, "cured", viewer=V(w.manager))
    cases.close_case(session, case.id, "written_off", viewer=V(w.manager), note="无力偿还")
    assert (case.status, case.close_reason) == ("closed", "written_off")
    on(D + days(1))
    cob.run_date(D + days(1))  # still overdue in lending, but written off: collections stop, no new case
    assert session.scalar(select(func.count()).select_from(CollectionCase).where(
        CollectionCase.loan_id == case.loan_id)) == 1


def test_an_unassigned_case_is_taken_once(session):
    w, _, _ = _two_overdue(session, collectors=0)
    case = _open_cases(session)[0]
    assert case.collector_staff_id is None
    a = make_staff(session, role="collector", department=w.manager.department, data_scope="own")
    b = make_staff(session, role="collector", department=w.manager.department, data_scope="own")
    assert {r.case.id for r in cases.queue(session, V(b), unassigned=True)} == {c.id for c in _open_cases(session)}
    cases.take_case(session, case.id, viewer=V(a))
    with pytest.raises(CaseTaken):
        cases.take_case(session, case.id, viewer=V(b))
    assert case.collector_staff_id == a.id
    assert session.scalar(select(func.count()).select_from(CollectionAction).where(
        CollectionAction.case_id == case.id, CollectionAction.kind == "assign")) == 1


def test_two_collectors_taking_the_same_case_at_once_one_wins(committed):
    with committed() as session:
        w, _ = make_loan(session)
        session.commit()
    on(D)
    cob.run_date(D)  # no collector yet: the case waits to be taken
    with committed() as session:
        case_id = _open_cases(session)[0].id
        takers = [make_staff(session, role="collector", department=session.merge(w.manager).department,
                             data_scope="own") for _ in range(2)]
        viewers = [V(t) for t in takers]
        session.commit()
    barrier = threading.Barrier(2)
    results: list[object] = []

    def take(viewer):
        barrier.wait()
        try:
            with db.unit_of_work() as s:
                cases.take_case(s, case_id, viewer=viewer)
            results.append(viewer.staff_id)
        except CaseTaken as exc:
            results.append(exc)

    threads = [threading.Thread(target=take, args=(v,)) for v in viewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if isinstance(r, int)]
    assert len(winners) == 1 and sum(isinstance(r, CaseTaken) for r in results) == 1
    with committed() as session:
        assert session.get(CollectionCase, case_id).collector_staff_id == winners[0]
        assert session.get(Loan, session.get(CollectionCase, case_id).loan_id).collector_staff_id == winners[0]


def test_the_queue_and_case_pages_work_a_case_and_hide_others(session):
    from tests.test_admin_support import console_client, log_in

    w, _, (a, b) = _two_overdue(session)
    mine = next(c for c in _open_cases(session) if c.collector_staff_id == a.id)
    other = next(c for c in _open_cases(session) if c.collector_staff_id == b.id)
    client = console_client()
    csrf = log_in(client, session, a)
    queue = client.get("/console/collections/cases")
    assert queue.status_code == 200
    assert f"/console/collections/cases/{mine.id}" in queue.text
    assert f"/console/collections/cases/{other.id}" not in queue.text
    assert client.get(f"/console/collections/cases/{other.id}").status_code == 404
    page = client.get(f"/console/collections/cases/{mine.id}")
    assert page.status_code == 200 and "登记结果" in page.text and "号码错误" in page.text
    r = client.post(f"/console/collections/cases/{mine.id}/outcome", data={
        "csrf_token": csrf, "outcome": "promise", "promised_date": str(D + days(2)), "promised_amount": "abc"})
    assert r.status_code == 422 and session.scalar(select(func.count()).select_from(CollectionAction).where(
        CollectionAction.case_id == mine.id, CollectionAction.kind == "promise")) == 0
    r = client.post(f"/console/collections/cases/{mine.id}/outcome", data={
        "csrf_token": csrf, "outcome": "promise", "promised_date": str(D + days(2)), "promised_amount": "100.00"})
    assert r.status_code == 303, r.text
    assert "承诺还款" in client.get(r.headers["location"]).text
    assert client.post(f"/console/collections/cases/{other.id}/outcome", data={
        "csrf_token": csrf, "outcome": "unreachable"}).status_code == 404


def test_the_staff_api_takes_records_and_refuses_out_of_scope(session):
    from crm import auth_service
    from tests.test_admin_support import bearer, console_client

    w, _, _ = _two_overdue(session, collectors=0)
    case = _open_cases(session)[0]
    a = make_staff(session, role="collector", department=w.manager.department, data_scope="own")
    b = make_staff(session, role="collector", department=w.manager.department, data_scope="own")
    client = console_client()
    ha = bearer(auth_service.issue_api_token(session, a.id, "测试")[0])
    hb = bearer(auth_service.issue_api_token(session, b.id, "测试")[0])
    assert {c["id"] for c in client.get("/api/v1/collections/cases?unassigned=true", headers=ha).json()} >= {case.id}
    assert client.post(f"/api/v1/collections/cases/{case.id}/take", headers=ha).status_code == 200
    lost = client.post(f"/api/v1/collections/cases/{case.id}/take", headers=hb)
    assert lost.status_code == 409 and lost.json()["code"] == "collection_case_taken"
    assert client.get(f"/api/v1/collections/cases/{case.id}", headers=hb).status_code == 404
    bad = client.post(f"/api/v1/collections/cases/{case.id}/outcomes", headers=ha, json={"outcome": "promise"})
    assert bad.status_code == 422
    r = client.post(f"/api/v1/collections/cases/{case.id}/outcomes", headers=ha, json={
        "outcome": "promise", "promised_date": str(D + days(3)), "promised_amount": 20_000})
    assert r.status_code == 201, r.text
    assert [(h["kind"], h["promise_status"]) for h in r.json()["history"]][:1] == [("promise", "open")]
