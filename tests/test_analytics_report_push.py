"""A scheduled report pushed to a WeCom group chat through the simulator over real HTTP: the chat is made with
appchat/create on the first push, the message is readable Chinese markdown, each period is pushed once however
often the job runs, a retry after a WeCom error sends once, and a push that may have gone out is never resent.
The simulator's appchat endpoints honour WeCom's rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from analytics import report_schedule, reports
from analytics.models import Report, ReportPush
from bot import report_tasks
from bot.gateway import Gateway
from bot.wecom_errors import WecomApiError
from core import clock
from tests.analytics_support import seed
from tests.lending_flow_support import V


def _shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    """2026-11-<day> hour:minute in Asia/Shanghai, as the UTC instant."""
    return datetime(2026, 11, day, hour, minute, tzinfo=clock.BUSINESS_TZ).astimezone(UTC)


def _scheduled(session, **kw) -> tuple[Report, object]:
    s = seed(session)  # the clock stands at 2026-11-23 10:00 Shanghai
    s.w.manager.wecom_userid, s.w.sales.wecom_userid = "mgr_wx", "sales_wx"
    session.flush()
    draft = reports.ReportDraft(
        name="经营日报", metrics=["funnel_lead", "disbursed_amount"], dimension="salesperson", period="month",
        schedule="daily", schedule_time="09:00", chat_name="经营日报群",
        chat_staff_ids=[s.w.manager.id, s.w.sales.id]) if not kw else reports.ReportDraft(**kw)
    return reports.save(session, V(s.w.manager), draft), s


def _pushes(session, report_id: int) -> list[ReportPush]:
    session.expire_all()
    return list(session.scalars(select(ReportPush).where(ReportPush.report_id == report_id).order_by(ReportPush.id)))


def test_a_daily_report_is_pushed_once_a_day_into_a_group_chat(session, wecom_server):
    report, s = _scheduled(session)
    # set at 10:00 on the 23rd: that day's 09:00 had passed, so the first push is the 24th's
    assert report_schedule.queue_pushes(session, _shanghai(23, 23, 59)) == 0
    assert report_schedule.queue_pushes(session, _shanghai(24, 8, 59)) == 0
    clock.freeze(_shanghai(24, 9, 0))
    assert report_schedule.queue_pushes(session) == 1
    assert report_schedule.queue_pushes(session, _shanghai(24, 18, 0)) == 0  # the job runs every minute
    [push] = _pushes(session, report.id)
    assert push.period_key == "2026-11-24" and push.status == "pending"

    assert report_tasks.push_report(push.id) == "sent"
    assert report_tasks.push_report(push.id) == "skipped"  # a second delivery of the task sends nothing
    state = wecom_server.state()
    [chat] = state["appchats"].values()
    assert chat["name"] == "经营日报群" and sorted(chat["userlist"]) == ["mgr_wx", "sales_wx"]
    [sent] = state["appchat_messages"]
    assert sent["chatid"] == chat["chatid"] and sent["msgtype"] == "markdown"
    text = sent["content"]["content"]
    assert text.startswith("**经营日报**") and "统计区间：2026-11-01 至 2026-11-24（本月）" in text
    assert f"- {s.w.sales.display_name}：新增线索 3，放款金额 ¥50,000.00" in text and "**合计**" in text
    assert f"/console/reports/{report.id}" in text
    assert [p.status for p in _pushes(session, report.id)] == ["sent"]
    session.refresh(report)
    assert report.chat_id == chat["chatid"]

    # the next day: one more push, into the same chat (not created again)
    assert report_schedule.queue_pushes(session, _shanghai(25, 9, 30)) == 1
    assert report_tasks.push_report(_pushes(session, report.id)[-1].id) == "sent"
    assert len(wecom_server.calls("appchat/create")) == 1 and len(wecom_server.state()["appchat_messages"]) == 2


def test_a_retry_after_a_wecom_error_sends_once(session, wecom_server):
    report, _ = _scheduled(session)
    report_schedule.queue_pushes(session, _shanghai(24, 9, 0))
    [push] = _pushes(session, report.id)
    wecom_server.arm(-1, path="appchat/send")  # 系统繁忙: nothing sent
    with pytest.raises(WecomApiError):
        report_tasks.push_report(push.id)
    [push] = _pushes(session, report.id)
    assert push.status == "pending" and "系统繁忙" in push.error
    assert report_tasks.push_report(push.id) == "sent"  # the task's retry
    assert report_tasks.push_report(push.id) == "skipped"
    assert len(wecom_server.state()["appchat_messages"]) == 1


def test_a_push_that_may_have_gone_out_is_never_sent_again(session, wecom_server):
    report, _ = _scheduled(session)
    report_schedule.queue_pushes(session, _shanghai(24, 9, 0))
    [push] = _pushes(session, report.id)
    push.status = "sending"  # claimed by a run that died while sending
    session.flush()
    assert report_tasks.push_report(push.id) == "skipped"
    assert wecom_server.state()["appchat_messages"] == []


def test_a_weekly_report_is_due_on_its_weekday_once_a_week(session):
    report, s = _scheduled(session)
    reports.save(session, V(s.w.manager), reports.ReportDraft(
        name="经营周报", metrics=["funnel_lead"], period="last_week", schedule="weekly", schedule_weekday=1,
        schedule_time="08:30", chat_name="周报群", chat_staff_ids=[s.w.manager.id, s.w.sales.id]), report.id)
    assert report_schedule.due_period(report, _shanghai(24, 9, 0)) is None  # a Tuesday
    assert report_schedule.due_period(report, _shanghai(30, 8, 29)) is None  # Monday, before the time
    assert report_schedule.due_period(report, _shanghai(30, 8, 30)) == "2026-W49"
    assert report_schedule.queue_pushes(session, _shanghai(30, 8, 30)) == 1
    assert report_schedule.queue_pushes(session, _shanghai(30, 20, 0)) == 0
    [push] = _pushes(session, report.id)
    assert "统计区间：2026-11-23 至 2026-11-29（上周）" in push.content


def test_the_simulator_honours_the_appchat_rules(session, wecom_server):  # session: the token row is rolled back
    gw = Gateway(sleep=lambda s: None)
    with pytest.raises(WecomApiError) as one:
        gw.appchat_create("只有一人", ["alice"])
    assert one.value.errcode == 86006
    with pytest.raises(WecomApiError) as owner:
        gw.appchat_create("群", ["alice", "bob"], owner="carol")
    assert owner.value.errcode == 86005
    with pytest.raises(WecomApiError) as bad_id:
        gw.appchat_create("群", ["alice", "bob"], chatid="has-dash")
    assert bad_id.value.errcode == 86001
    chatid = gw.appchat_create("经营群" * 20, ["alice", "bob"], chatid="abc123")["chatid"]
    assert chatid == "abc123"
    with pytest.raises(WecomApiError) as twice:
        gw.appchat_create("群", ["alice", "bob"], chatid="abc123")
    assert twice.value.errcode == 86215
    assert len(gw.appchat_get("abc123")["chat_info"]["name"]) == 50  # cut at 50 characters
    with pytest.raises(WecomApiError) as unknown:
        gw.appchat_send("nochat", "你好")
    assert unknown.value.errcode == 86003
    with pytest.raises(WecomApiError) as long:
        gw.appchat_send("abc123", "长" * 700, msgtype="markdown")  # 2,100 bytes
    assert long.value.errcode == 45002
    gw.appchat_send("abc123", "**你好**", msgtype="markdown")
    assert wecom_server.state()["appchat_messages"][-1]["content"] == {"content": "**你好**"}


def test_the_periodic_job_sends_through_the_outbox(committed, wecom_server, task_runner):
    from analytics import tasks as analytics_tasks
    from core.db import unit_of_work

    with unit_of_work() as session:
        report, _ = _scheduled(session)
        report_id = report.id
    clock.freeze(_shanghai(24, 9, 1))
    assert analytics_tasks.queue_report_pushes() == 1  # committed: the outbox sends bot.push_report
    task_runner.drain()
    assert analytics_tasks.queue_report_pushes() == 0
    task_runner.drain()
    with unit_of_work() as session:
        assert [p.status for p in _pushes(session, report_id)] == ["sent"]
    assert len(wecom_server.state()["appchat_messages"]) == 1


def test_a_send_that_timed_out_after_wecom_took_it_is_not_resent(session, wecom_server, monkeypatch):
    from bot.wecom_errors import WecomUnavailable

    report, _ = _scheduled(session)
    report_schedule.queue_pushes(session, _shanghai(24, 9, 0))
    [push] = _pushes(session, report.id)
    original = Gateway.appchat_send

    def sent_then_timed_out(self, *args, **kwargs):
        original(self, *args, **kwargs)  # WeCom got it …
        raise WecomUnavailable()  # … and the answer never came back

    monkeypatch.setattr(Gateway, "appchat_send", sent_then_timed_out)
    assert report_tasks.push_report(push.id) == "unknown"
    monkeypatch.setattr(Gateway, "appchat_send", original)
    assert report_tasks.push_report(push.id) == "skipped"  # a retry or a second delivery sends nothing
    [push] = _pushes(session, report.id)
    assert push.status == "unknown" and "未自动重发" in push.error
    assert len(wecom_server.state()["appchat_messages"]) == 1
