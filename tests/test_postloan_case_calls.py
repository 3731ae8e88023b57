"""The case page's 拨打: the collector holding the case dials the borrower through telephony (the simulator,
over HTTP); the finished call is recorded on the case as a call action, once; someone else's case or a
do-not-call borrower is refused and nothing is stored."""

from __future__ import annotations

from sqlalchemy import func, select

from lending.servicing import cob
from postloan.models import CollectionAction, CollectionCase
from postloan.telephony import calls
from postloan.telephony.models import TelephonyCall
from tests.factories import make_staff
from tests.servicing_support import make_loan, on
from tests.test_admin_support import console_client, log_in
from tests.test_postloan_cases import D


def _case(session):
    w, loan = make_loan(session)
    collector = make_staff(session, role="collector", department=w.manager.department, data_scope="own")
    other = make_staff(session, role="collector", department=w.manager.department, data_scope="own")
    on(D)  # ten days overdue, 10:00 in Shanghai: within the calling hours
    cob.run_date(D)
    case = session.scalar(select(CollectionCase).where(CollectionCase.loan_id == loan.id))
    assert case is not None and case.collector_staff_id in (collector.id, other.id)
    holder, stranger = (collector, other) if case.collector_staff_id == collector.id else (other, collector)
    session.commit()
    return case, loan, holder, stranger


def test_a_case_call_is_dialled_and_recorded_on_the_case_once(session, tel_server, task_runner):
    case, loan, holder, stranger = _case(session)
    client = console_client()
    hx = {"HX-Request": "true"}
    csrf = log_in(client, session, stranger)
    session.commit()
    refused = client.post(f"/console/collections/calls/case/{case.id}", data={"csrf_token": csrf}, headers=hx)
    assert refused.status_code == 404  # another collector's case: not theirs to open
    assert session.scalar(select(func.count()).select_from(TelephonyCall)) == 0
    csrf = log_in(client, session, holder)
    session.commit()
    page = client.get(f"/console/collections/cases/{case.id}")
    assert page.status_code == 200 and f'hx-post="/console/collections/calls/case/{case.id}"' in page.text
    answer = client.post(f"/console/collections/calls/case/{case.id}", data={"csrf_token": csrf}, headers=hx)
    assert answer.status_code == 200 and "正在接通呼叫中心" in answer.text
    call = session.scalar(select(TelephonyCall))
    assert (call.subject_kind, call.subject_id, call.customer_id) == ("collection_case", case.id, loan.customer_id)
    task_runner.drain()
    assert tel_server.complete(call.out_call_no, "answered", duration=120) == [204]
    assert tel_server.callback(call.out_call_no, copies=2) == [204, 204]
    task_runner.drain()
    actions = list(session.scalars(select(CollectionAction).where(CollectionAction.case_id == case.id,
                                                                  CollectionAction.kind == "call")))
    assert len(actions) == 1 and actions[0].outcome == "已接通" and "120 秒" in actions[0].note
    assert actions[0].by_staff_id == holder.id
    history = client.get(f"/console/collections/cases/{case.id}")
    assert "120 秒" in history.text
    calls.mark_do_not_call(session, loan.customer_id, staff_id=None, reason="客户要求")
    session.commit()
    dnc = client.post(f"/console/collections/calls/case/{case.id}", data={"csrf_token": csrf}, headers=hx)
    assert "无法拨打" in dnc.text and "勿扰" in dnc.text
    assert session.scalar(select(func.count()).select_from(TelephonyCall)) == 1
