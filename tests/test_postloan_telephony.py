"""Telephony end to end over real HTTP: a call placed (do-not-call and hours checked first), dialled by a
task through the simulator's API, its signed result callback stored once and applied once (timeline,
listeners); duplicates, forgeries and stale callbacks; batch dial lists; the console's click-to-call never
sends the number to the browser."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from core import clock, pii
from core.outbox import TaskOutbox
from crm.models import CustomerEvent
from postloan.telephony import calls, listeners
from postloan.telephony.exceptions import DoNotCallRefused, OutsideCallHours
from postloan.telephony.models import TelephonyCall, TelephonyCallback
from tests.factories import make_customer, make_staff
from tests.test_admin_support import console_client, log_in

PHONE = "13912345678"
TEN_AM = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def _count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def people(session):
    clock.freeze(TEN_AM)
    collector = make_staff(session, role="collector", data_scope="own")
    customer = make_customer(session, phone=PHONE, name="王五", owner=make_staff(session, role="sales"))
    session.commit()
    return collector, customer


def test_a_call_is_dialled_on_the_server_and_its_result_lands_once_on_the_timeline(session, people, tel_server,
                                                                                  task_runner):
    collector, customer = people
    heard = []

    @listeners.on_call_finished("test_case")
    def _heard(s, call):
        heard.append((call.id, call.result, call.duration_seconds))

    try:
        call = calls.place_call(session, staff_id=collector.id, customer_id=customer.id, subject_kind="test_case",
                                subject_id=7)
        session.commit()
        assert call.status == "queued" and call.phone_masked == pii.mask_phone(PHONE) and PHONE not in call.phone_masked
        task_runner.drain()
        session.refresh(call)
        assert call.status == "dialing" and call.provider_call_id.startswith("SIMCALL")
        sim = tel_server.sim_call(call.out_call_no)
        assert sim["callee_masked"] == pii.mask_phone(PHONE) and sim["caller"] == collector.username
        assert tel_server.complete(call.out_call_no, "answered", duration=93) == [204]
        assert tel_server.callback(call.out_call_no, copies=2) == [204, 204]  # re-deliveries: same event id
        assert _count(session, TelephonyCallback) == 1
        task_runner.drain()
        session.refresh(call)
        assert (call.status, call.result, call.duration_seconds) == ("finished", "answered", 93)
        assert call.recording_url.startswith(tel_server.sim_url + "/recordings/")
        assert tel_server.http.get(call.recording_url).headers["content-type"] == "audio/wav"
        events = list(session.scalars(select(CustomerEvent).where(CustomerEvent.customer_id == customer.id,
                                                                  CustomerEvent.kind == "call")))
        assert len(events) == 1 and "已接通" in events[0].summary and "93 秒" in events[0].summary
        assert PHONE not in events[0].summary
        assert heard == [(call.id, "answered", 93)]
    finally:
        listeners.remove("test_case", _heard)


@pytest.mark.parametrize("forge", ["signature", "stale", "body"])
def test_forged_or_stale_callbacks_are_rejected_and_change_nothing(session, people, tel_server, task_runner, forge):
    collector, customer = people
    call = calls.place_call(session, staff_id=collector.id, customer_id=customer.id)
    session.commit()
    task_runner.drain()
    tel_server.complete(call.out_call_no, "no_answer", notify=False)
    assert tel_server.callback(call.out_call_no, forge=forge) == [401]
    assert _count(session, TelephonyCallback) == 0
    session.refresh(call)
    assert call.status == "dialing" and call.result is None


def test_an_oversized_callback_is_refused_before_it_is_read_whole_and_stores_nothing(session):
    from postloan.telephony import config, signing

    client = console_client()
    too_big = b"{" + b" " * signing.MAX_BODY_BYTES + b"}"
    answer = client.post(config.CALLBACK_PATH, content=too_big, headers={"content-type": "application/json"})
    assert answer.status_code == 413 and answer.json()["code"] == "telephony_callback_too_large"
    assert _count(session, TelephonyCallback) == 0


def test_do_not_call_and_hours_refuse_in_chinese_and_store_nothing(session, people):
    collector, customer = people
    calls.mark_do_not_call(session, customer.id, staff_id=collector.id, reason="客户要求不再来电")
    session.commit()
    tasks_before = _count(session, TaskOutbox)
    with pytest.raises(DoNotCallRefused, match="勿扰"):
        calls.place_call(session, staff_id=collector.id, customer_id=customer.id)
    calls.clear_do_not_call(session, customer.id, staff_id=collector.id)
    clock.freeze(datetime(2026, 12, 7, 13, 30, tzinfo=UTC))  # 21:30 in Shanghai
    with pytest.raises(OutsideCallHours, match="08:00–21:00"):
        calls.place_call(session, staff_id=collector.id, customer_id=customer.id)
    clock.freeze(datetime(2026, 12, 6, 23, 59, tzinfo=UTC))  # 07:59
    with pytest.raises(OutsideCallHours):
        calls.place_call(session, staff_id=collector.id, customer_id=customer.id)
    assert _count(session, TelephonyCall) == 0 and _count(session, TaskOutbox) == tasks_before


def test_a_batch_dials_the_callable_and_reports_the_rest(session, people, tel_server, task_runner):
    collector, customer = people
    second = make_customer(session, phone="13800001111", name="赵六")
    refused = make_customer(session, phone="13800002222", name="钱七")
    calls.mark_do_not_call(session, refused.id, staff_id=None)
    batch, placed, refusals = calls.place_batch(session, staff_id=collector.id, name="M1 今日",
                                                targets=[(customer.id, None, None), (refused.id, None, None),
                                                         (second.id, None, None), (customer.id, None, None)])
    session.commit()
    assert len(placed) == 2 and [r[0] for r in refusals] == [refused.id] and "勿扰" in refusals[0][1]
    task_runner.drain()
    sims = {c["out_call_no"]: c for c in tel_server.state()["calls"]}
    assert set(sims) == {c.out_call_no for c in placed} and {c["batch"] for c in sims.values()} == {"M1 今日"}
    for c in placed:
        session.refresh(c)
        assert c.status == "dialing"
    assert tel_server.complete(placed[1].out_call_no, "busy") == [204]
    task_runner.drain()
    session.refresh(placed[1])
    assert placed[1].result == "busy" and placed[1].duration_seconds == 0


def test_click_to_call_from_the_console_shows_only_the_masked_number(session, people, tel_server, task_runner):
    collector, other = people
    mine = make_customer(session, phone="13755556666", name="王五", owner=collector)
    client = console_client()
    csrf = log_in(client, session, collector)
    session.commit()
    hx = {"HX-Request": "true"}
    outside = client.post("/console/collections/calls/dial", data={"customer_id": other.id, "csrf_token": csrf},
                          headers=hx)
    assert outside.status_code == 404  # not the collector's customer: out of scope, nothing stored
    assert _count(session, TelephonyCall) == 0
    kwargs = {"data": {"customer_id": mine.id, "csrf_token": csrf}, "headers": hx}
    response = client.post("/console/collections/calls/dial", **kwargs)
    assert response.status_code == 200 and "13755556666" not in response.text
    assert pii.mask_phone("13755556666") in response.text and "hx-trigger" in response.text
    call = session.scalar(select(TelephonyCall))
    task_runner.drain()
    tel_server.complete(call.out_call_no, "answered", duration=40)
    task_runner.drain()
    status = client.get(f"/console/collections/calls/{call.id}/status")
    assert "已接通" in status.text and "40 秒" in status.text and "hx-trigger" not in status.text
    page = client.get("/console/collections/calls")
    assert page.status_code == 200 and "王五" in page.text and "13755556666" not in page.text
    profile = client.get(f"/console/customers/{mine.id}")  # the customer 360 timeline
    assert profile.status_code == 200 and "外呼" in profile.text and "已接通，通话 40 秒" in profile.text
    calls.mark_do_not_call(session, mine.id, staff_id=None)
    session.commit()
    refused = client.post("/console/collections/calls/dial", **kwargs)
    assert "无法拨打" in refused.text and "勿扰" in refused.text
    assert _count(session, TelephonyCall) == 1


def test_the_staff_api_places_a_call_and_refuses_a_do_not_call_customer_with_a_stable_code(session, people):
    from crm import auth_service
    from tests.test_admin_support import bearer

    collector, _ = people
    mine = make_customer(session, phone="13755557777", name="孙八", owner=collector)
    token, _ = auth_service.issue_api_token(session, collector.id, "外呼", 30)
    session.commit()
    client = console_client()
    placed = client.post("/api/v1/postloan/calls", json={"customer_id": mine.id}, headers=bearer(token))
    assert placed.status_code == 201 and placed.json()["status"] == "queued"
    assert placed.json()["phone_masked"] == pii.mask_phone("13755557777") and "13755557777" not in placed.text
    assert client.get(f"/api/v1/postloan/calls/{placed.json()['id']}", headers=bearer(token)).status_code == 200
    calls.mark_do_not_call(session, mine.id, staff_id=None)
    session.commit()
    refused = client.post("/api/v1/postloan/calls", json={"customer_id": mine.id}, headers=bearer(token))
    assert refused.status_code == 409 and refused.json()["code"] == "call_do_not_call"
    assert _count(session, TelephonyCall) == 1
