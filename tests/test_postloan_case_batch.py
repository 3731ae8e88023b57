"""Batch dial lists are made of cases: the collector's queue (or one bucket of it, or chosen case numbers);
each call lands on its case as well as on the customer timeline, and a case that was not dialled (do-not-call,
outside the hours, stuck before the provider rang) is recorded on the case too."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core import clock
from crm.models import CustomerEvent
from postloan import case_calls
from postloan.models import CollectionAction
from postloan.telephony import calls
from postloan.telephony.models import TelephonyCall
from tests.lending_flow_support import V
from tests.test_admin_support import console_client, log_in
from tests.test_postloan_case_calls import _case


def _case_calls(session, case):
    return list(session.scalars(select(CollectionAction).where(CollectionAction.case_id == case.id,
                                                               CollectionAction.kind == "call")
                                .order_by(CollectionAction.id)))


def test_the_console_batch_of_my_queue_dials_each_case_and_lands_on_it(session, tel_server, task_runner):
    case, loan, holder, stranger = _case(session)
    client = console_client()
    csrf = log_in(client, session, stranger)
    session.commit()
    empty = client.post("/console/collections/calls/batch", data={"csrf_token": csrf, "name": "今日"})
    assert empty.status_code == 422 and "没有可拨打的案件" in empty.text  # nothing in the stranger's queue
    other = client.post("/console/collections/calls/batch", data={"csrf_token": csrf, "case_ids": str(case.id)})
    assert other.status_code == 200 and f"案件 #{case.id}" in other.text
    assert session.scalar(select(TelephonyCall)) is None and _case_calls(session, case) == []
    csrf = log_in(client, session, holder)
    session.commit()
    page = client.post("/console/collections/calls/batch", data={"csrf_token": csrf, "name": "今日",
                                                                 "bucket": case.bucket})
    assert page.status_code == 200 and "批量外呼已提交 1 通" in page.text
    call = session.scalar(select(TelephonyCall))
    assert (call.subject_kind, call.subject_id, call.batch_id is not None) == ("collection_case", case.id, True)
    task_runner.drain()
    assert tel_server.complete(call.out_call_no, "no_answer") == [204]
    task_runner.drain()
    landed = _case_calls(session, case)
    assert len(landed) == 1 and landed[0].outcome == "无人接听" and landed[0].by_staff_id == holder.id
    assert session.scalar(select(CustomerEvent).where(CustomerEvent.customer_id == loan.customer_id,
                                                      CustomerEvent.kind == "call")) is not None


def test_a_do_not_call_case_left_off_the_list_is_recorded_on_the_case(session):
    case, loan, holder, _ = _case(session)
    calls.mark_do_not_call(session, loan.customer_id, staff_id=None, reason="客户要求")
    result = case_calls.dial_cases(session, viewer=V(holder), name="M1")
    assert result.calls == [] and [(r.subject_id, "勿扰" in r.reason) for r in result.refused] == [(case.id, True)]
    landed = _case_calls(session, case)
    assert len(landed) == 1 and landed[0].outcome == "未拨打" and "勿扰" in landed[0].note


def test_a_call_that_fails_before_it_rings_is_recorded_on_its_case(session):
    case, _, holder, _ = _case(session)
    result = case_calls.dial_cases(session, viewer=V(holder), case_ids=[case.id])
    assert len(result.calls) == 1
    clock.freeze(clock.now() + timedelta(hours=2))  # the provider never took it
    assert calls.fail_stuck(session, timedelta(minutes=30)) == 1
    landed = _case_calls(session, case)
    assert len(landed) == 1 and landed[0].outcome == "呼叫失败" and "呼叫中心无法连接" in landed[0].note
    again = case_calls.dial_cases(session, viewer=V(holder), case_ids=[case.id])
    clock.freeze(clock.now() + timedelta(hours=12))  # the dial task runs outside the calling hours
    assert calls.dial(session, again.calls[0].id) is True
    landed = _case_calls(session, case)
    assert len(landed) == 2 and "拨号前检查未通过" in landed[1].note
