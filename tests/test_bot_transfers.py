"""WeCom customer transfers (bot.transfer_customers, bot.poll_transfers, transfer_fail) over real
HTTP against the WeCom simulator: batches, results, the 2-per-90-days rule, group chats, idempotency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot import transfers
from bot.gateway import Gateway
from bot.wecom_errors import WecomRateLimited
from core import clock
from core.audit import AuditLog
from core.tasks import run_task
from crm import handover_flows
from crm.handover import Plan
from crm.models import CustomerEvent, Notification, WeComTransfer, WeComTransferEvent
from crm.scope import Viewer
from tests.factories import make_customer, make_org, make_staff

RESIGNED_CALL = "externalcontact/resigned/transfer_customer"
IN_SERVICE_CALL = "externalcontact/transfer_customer"


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def manager(session, org):
    return make_staff(session, role="manager", department=org["branch"])


@pytest.fixture
def viewer(manager):
    return Viewer.of(manager)


@pytest.fixture
def leaver(session, org):
    return make_staff(session, department=org["team_a"], display_name="离职小王", wecom_userid="LeaverWx")


@pytest.fixture
def heir(session, org):
    return make_staff(session, department=org["team_a"], display_name="接班小李", wecom_userid="HeirWx")


def _contacts(session, wecom_server, owner, leaver, n, prefix="wmT", *, in_wecom=True):
    """n customers of ``leaver`` who are WeCom contacts of ``owner`` (in the simulator too)."""
    out = []
    for i in range(n):
        ext = f"{prefix}{leaver.id}x{i}"
        if in_wecom:
            wecom_server.admin("contact", {"userid": owner, "external_userid": ext, "name": f"客户{i}",
                                           "welcome": False})
        out.append(make_customer(session, owner=leaver, wecom_external_userid=ext))
    return out


def _depart(session, wecom_server, viewer, leaver, heir, customers_n, **kw):
    cs = _contacts(session, wecom_server, leaver.wecom_userid, leaver, customers_n, **kw)
    wecom_server.admin("user/leave", {"userid": leaver.wecom_userid})
    case = handover_flows.start_departure(session, viewer, leaver.id)
    handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id,
                                                               allow_over_capacity=True))
    session.commit()  # the outbox sends bot.transfer_customers after commit
    return case, cs


MINE = ("bot.transfer_customers", "bot.poll_transfers", "bot.process_inbox", "bot.process_inbox_urgent")


def _drain(task_runner):
    """Run the queued tasks of this area (and what they enqueue); others' tasks (notification
    pushes, …) are left alone."""
    ran = []
    while True:
        mine = [job for job in task_runner.sent if job[0] in MINE]
        if not mine:
            return ran
        task_runner.sent.remove(mine[0])
        run_task(*mine[0])
        ran.append(mine[0][0])


def _statuses(session, case_id):
    session.expire_all()
    return dict(session.execute(select(WeComTransfer.status, func.count()).where(WeComTransfer.case_id == case_id)
                                .group_by(WeComTransfer.status)).all())


def _status_of(session, customer):
    session.expire_all()
    return session.scalar(select(WeComTransfer.status).where(WeComTransfer.customer_id == customer.id)
                          .order_by(WeComTransfer.id.desc()).limit(1))


def test_departure_calls_resigned_transfer_in_batches_of_100(session, wecom_server, task_runner, viewer, leaver,
                                                             heir):
    case, _ = _depart(session, wecom_server, viewer, leaver, heir, 230)
    assert "bot.transfer_customers" in _drain(task_runner)
    calls = wecom_server.calls(RESIGNED_CALL)
    assert [len(c["body"]["external_userid"]) for c in calls] == [100, 100, 30]
    assert {(c["body"]["handover_userid"], c["body"]["takeover_userid"]) for c in calls} == {("LeaverWx", "HeirWx")}
    assert wecom_server.calls(IN_SERVICE_CALL) == []
    assert _statuses(session, case.id) == {"waiting": 230}


def test_after_24_hours_the_poll_marks_customers_taken_over(session, wecom_server, task_runner, viewer, leaver, heir):
    case, cs = _depart(session, wecom_server, viewer, leaver, heir, 3)
    _drain(task_runner)
    run_task("bot.poll_transfers", (), {})
    assert _statuses(session, case.id) == {"waiting": 3}  # WeCom still says 2 (waiting)
    wecom_server.advance(hours=24, seconds=1)
    run_task("bot.poll_transfers", (), {})
    assert _statuses(session, case.id) == {"taken_over": 3}
    assert wecom_server.calls("externalcontact/resigned/transfer_result")
    kinds = session.scalars(select(CustomerEvent.kind).where(CustomerEvent.customer_id == cs[0].id)).all()
    assert "wecom.transfer.waiting" in kinds and "wecom.transfer.taken_over" in kinds


def test_result_pages_are_followed_with_the_cursor(session, wecom_server, task_runner, viewer, leaver, heir):
    case, _ = _depart(session, wecom_server, viewer, leaver, heir, 5)
    _drain(task_runner)
    wecom_server.configure(page_size=2)
    wecom_server.advance(hours=25)
    run_task("bot.poll_transfers", (), {})
    answered = [c["body"]["cursor"] for c in wecom_server.calls("externalcontact/resigned/transfer_result")
                if c["errcode"] == 0]  # (the day-old token was refused once and refreshed)
    assert answered == ["", "c2", "c4"]
    assert _statuses(session, case.id) == {"taken_over": 5}


def test_a_refusal_and_a_full_takeover_member_are_recorded_and_the_owner_told(session, wecom_server, task_runner,
                                                                             viewer, leaver, heir):
    case, cs = _depart(session, wecom_server, viewer, leaver, heir, 3)
    _drain(task_runner)
    wecom_server.transfer_outcome(cs[0].wecom_external_userid, "refuse")
    wecom_server.transfer_outcome(cs[1].wecom_external_userid, "limit")
    wecom_server.advance(hours=25)
    run_task("bot.poll_transfers", (), {})
    assert [_status_of(session, c) for c in cs] == ["refused", "limit_reached", "taken_over"]
    notes = session.scalars(select(Notification.body).where(Notification.staff_id == heir.id,
                                                            Notification.kind == "wecom_transfer")).all()
    assert len(notes) == 1 and "2 位客户" in notes[0] and "客户拒绝 1 位" in notes[0]


def test_a_per_customer_errcode_fails_that_customer_only(session, wecom_server, task_runner, viewer, leaver, heir):
    good = _contacts(session, wecom_server, "LeaverWx", leaver, 1, prefix="wmOk")
    stranger = _contacts(session, wecom_server, "LeaverWx", leaver, 1, prefix="wmNo", in_wecom=False)  # no relation: 84061
    wecom_server.admin("user/leave", {"userid": "LeaverWx"})
    case = handover_flows.start_departure(session, viewer, leaver.id)
    handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id))
    session.commit()
    _drain(task_runner)
    assert _status_of(session, good[0]) == "waiting"
    row = session.scalar(select(WeComTransfer).where(WeComTransfer.customer_id == stranger[0].id))
    assert (row.status, row.errcode) == ("failed", 84061)


def test_rerunning_the_task_requests_nothing_twice(session, wecom_server, task_runner, viewer, leaver, heir):
    wecom_server.admin("chat", {"owner": "LeaverWx", "name": "老客户群"})
    case, _ = _depart(session, wecom_server, viewer, leaver, heir, 120)
    _drain(task_runner)
    run_task("bot.transfer_customers", (case.id,), {})
    run_task("bot.transfer_customers", (case.id,), {})
    assert len(wecom_server.calls(RESIGNED_CALL)) == 2
    assert len(wecom_server.calls("externalcontact/groupchat/transfer")) == 1
    assert _statuses(session, case.id) == {"waiting": 120}
    assert session.scalar(select(func.count()).select_from(WeComTransferEvent)
                          .where(WeComTransferEvent.to_status == "waiting")) == 120


def test_a_rate_limit_past_the_backoff_leaves_rows_requested_for_the_retry(session, wecom_server, task_runner, viewer,
                                                                          leaver, heir):
    case, _ = _depart(session, wecom_server, viewer, leaver, heir, 2)
    task_runner.sent.clear()
    wecom_server.arm(45009, times=3, path="resigned/transfer_customer")
    with pytest.raises(WecomRateLimited):
        transfers.submit_case(case.id, Gateway(sleep=lambda s: None, max_rate_retries=2))
    assert _statuses(session, case.id) == {"requested": 2}
    transfers.submit_case(case.id, Gateway(sleep=lambda s: None))
    assert _statuses(session, case.id) == {"waiting": 2}


def test_a_third_in_service_transfer_in_90_days_is_refused_without_calling_wecom(session, wecom_server, org, viewer):
    a = make_staff(session, department=org["team_a"], wecom_userid="AWx")
    make_staff(session, department=org["team_a"], wecom_userid="BWx")
    c = make_customer(session, owner=a, wecom_external_userid="wmThird")
    now = clock.now()
    for days, (frm, to) in ((60, ("AWx", "BWx")), (30, ("BWx", "AWx"))):  # two earlier in-service transfers
        session.add(WeComTransfer(customer_id=c.id, external_userid="wmThird", handover_userid=frm,
                                  takeover_userid=to, kind="in_service", status="taken_over",
                                  requested_at=now - timedelta(days=days), updated_at=now - timedelta(days=days)))
    # A third request that got past the domain (e.g. written before the second one was recorded).
    third = WeComTransfer(case_id=None, customer_id=c.id, external_userid="wmThird", handover_userid="AWx",
                          takeover_userid="BWx", kind="in_service", status="requested", requested_at=now,
                          updated_at=now)
    session.add(third)
    session.flush()
    case = handover_flows.handover.open_in_service_case(session, viewer, a.id, [c.id])
    third.case_id = case.id
    session.flush()
    report = transfers.submit_case(case.id)
    assert report.refused_before_call == 1 and report.calls == 0
    assert wecom_server.calls(IN_SERVICE_CALL) == []
    session.expire_all()
    assert session.get(WeComTransfer, third.id).status == "failed"
    reason = session.scalar(select(WeComTransferEvent.reason).where(WeComTransferEvent.transfer_id == third.id,
                                                                   WeComTransferEvent.to_status == "failed"))
    assert "90 天内已在职转接 2 次" in reason


def test_in_service_case_uses_transfer_customer(session, wecom_server, task_runner, org, viewer):
    a = make_staff(session, department=org["team_a"], wecom_userid="AWx")
    b = make_staff(session, department=org["team_a"], wecom_userid="BWx")
    wecom_server.admin("contact", {"userid": "AWx", "external_userid": "wmOnJob", "name": "客户", "welcome": False})
    c = make_customer(session, owner=a, wecom_external_userid="wmOnJob")
    case = handover_flows.handover.open_in_service_case(session, viewer, a.id, [c.id])
    handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=b.id))
    session.commit()
    _drain(task_runner)
    calls = wecom_server.calls(IN_SERVICE_CALL)
    assert len(calls) == 1 and calls[0]["body"]["external_userid"] == ["wmOnJob"]
    assert wecom_server.calls(RESIGNED_CALL) == []
    assert _status_of(session, c) == "waiting"


def test_transfer_fail_callback_is_matched_by_the_takeover_member(session, wecom_server, task_runner, viewer, leaver,
                                                                  heir):
    _, cs = _depart(session, wecom_server, viewer, leaver, heir, 2)
    _drain(task_runner)
    driver = wecom_server.driver()
    try:
        answer = driver.transfer_fail("HeirWx", cs[1].wecom_external_userid, "customer_limit_exceed")
    finally:
        driver.close()
    assert answer.accepted
    assert "bot.process_inbox" in _drain(task_runner)
    assert [_status_of(session, c) for c in cs] == ["waiting", "limit_reached"]


def test_on_transfer_fail_applies_the_fail_reason_to_the_waiting_row(session, wecom_server, task_runner, viewer,
                                                                    leaver, heir):
    _, cs = _depart(session, wecom_server, viewer, leaver, heir, 1)
    _drain(task_runner)
    transfers.on_transfer_fail(session, {"UserID": "HeirWx", "ExternalUserID": cs[0].wecom_external_userid,
                                         "FailReason": "customer_refused"})
    assert _status_of(session, cs[0]) == "refused"


def test_transfer_fail_for_a_transfer_we_did_not_make_changes_nothing(session, viewer, leaver, heir):
    transfers.on_transfer_fail(session, {"UserID": "HeirWx", "ExternalUserID": "wmElsewhere",
                                         "FailReason": "customer_refused"})
    assert session.scalar(select(func.count()).select_from(WeComTransfer)) == 0


def test_group_chats_of_the_departed_owner_go_to_the_successor(session, wecom_server, task_runner, viewer, leaver,
                                                               heir):
    mine = [wecom_server.admin("chat", {"owner": "LeaverWx", "name": f"客户群{i}"})["chat_id"] for i in range(3)]
    other = wecom_server.admin("chat", {"owner": "SomeoneElse", "name": "别人的群"})["chat_id"]
    wecom_server.configure(page_size=2)  # the list is cursor-paged
    case, _ = _depart(session, wecom_server, viewer, leaver, heir, 1)
    _drain(task_runner)
    calls = wecom_server.calls("externalcontact/groupchat/transfer")
    assert len(calls) == 1 and sorted(calls[0]["body"]["chat_id_list"]) == sorted(mine)
    assert calls[0]["body"]["new_owner"] == "HeirWx"
    chats = wecom_server.state()["chats"]
    assert {chats[c]["owner"] for c in mine} == {"HeirWx"} and chats[other]["owner"] == "SomeoneElse"
    entry = session.scalar(select(AuditLog).where(AuditLog.action == transfers.GROUPCHAT_ACTION,
                                                  AuditLog.entity_id == str(case.id)))
    assert sorted(entry.after["transferred_ids"].split(",")) == sorted(mine)
    assert (entry.after["transferred"], entry.after["failed"]) == (3, 0)


def test_group_chats_of_an_in_service_case_are_left_alone(session, wecom_server, task_runner, org, viewer):
    a = make_staff(session, department=org["team_a"], wecom_userid="AWx")
    b = make_staff(session, department=org["team_a"], wecom_userid="BWx")
    wecom_server.admin("chat", {"owner": "AWx", "name": "在职的群"})
    c = make_customer(session, owner=a, wecom_external_userid="wmStay")
    case = handover_flows.handover.open_in_service_case(session, viewer, a.id, [c.id])
    handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=b.id))
    session.commit()
    _drain(task_runner)
    assert wecom_server.calls("groupchat/list") == []


def test_the_case_page_shows_transfer_results_and_group_chats(session, wecom_server, task_runner, manager, viewer,
                                                              leaver, heir):
    from tests.test_admin_support import console_client, log_in

    wecom_server.admin("chat", {"owner": "LeaverWx", "name": "老客户群"})
    case, cs = _depart(session, wecom_server, viewer, leaver, heir, 2)
    _drain(task_runner)
    wecom_server.transfer_outcome(cs[0].wecom_external_userid, "refuse")
    wecom_server.advance(hours=25)
    run_task("bot.poll_transfers", (), {})
    client = console_client()
    log_in(client, session, manager)
    page = client.get(f"/console/handover/{case.id}").text
    assert "客户拒绝" in page and "已接替" in page
    assert "企业微信客户群" in page and "客户群转接：成功 1 个，失败 0 个" in page
