"""Scheduled reports pushed into a WeCom group chat (``bot.push_report``, enqueued by
``analytics.report_schedule.queue_pushes``).

The push row is claimed (pending → sending) and committed before WeCom is called, so a second delivery of the task
finds it claimed and sends nothing. The group chat is made on the first push with ``appchat/create`` under an id
fixed by the report and its members (``report_schedule.chat_id_for``): after a crash between creating it and
recording it, creating it again answers 86215 (exists) and the same chat is used. A WeCom refusal (errcode)
means nothing was sent, and so does any failure before the send: the row goes back to pending and the task
retries. A failure of the send itself other than a WeCom errcode (a time-out) may have sent the message: the row
is left ``unknown`` and never sent again (a push may be missing, never doubled).
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from analytics import report_schedule
from analytics.models import Report
from bot.gateway import get_gateway
from bot.task_support import wecom_task
from bot.wecom_errors import WecomApiError
from core.db import unit_of_work
from crm.models import Staff

log = logging.getLogger(__name__)
CHAT_EXISTS = 86215


@wecom_task(report_schedule.PUSH_TASK)
def push_report(push_id: int) -> str:
    with unit_of_work() as session:
        push = report_schedule.claim(session, push_id)
        if push is None:
            return "skipped"
        report = session.get(Report, push.report_id)
        assert report is not None
        content, report_id, chat_id = push.content, report.id, report.chat_id
        wanted_chat = report_schedule.chat_id_for(report)
        name = report.chat_name or report.name
        userids = list(session.scalars(select(Staff.wecom_userid).where(
            Staff.id.in_(report.chat_staff_ids), Staff.wecom_userid.is_not(None)).order_by(Staff.id)))
    gateway = get_gateway()
    sending = False  # past this point a failure may mean the message went out
    try:
        if chat_id != wanted_chat:
            try:
                gateway.appchat_create(name, userids, owner=userids[0] if userids else None, chatid=wanted_chat)
            except WecomApiError as exc:
                if exc.errcode != CHAT_EXISTS:
                    raise
            with unit_of_work() as session:
                report_schedule.set_chat(session, report_id, wanted_chat)
        sending = True
        result = gateway.appchat_send(wanted_chat, content, msgtype="markdown")
    except Exception as exc:
        if isinstance(exc, WecomApiError) or not sending:  # WeCom refused, or the chat was not ready: not sent
            with unit_of_work() as session:
                report_schedule.release(session, push_id, getattr(exc, "message", type(exc).__name__),
                                        sent_maybe=False)
            raise
        # a time-out or a broken connection while sending: it may have been sent
        log.exception("report push %s: result unknown, not sent again", push_id)
        with unit_of_work() as session:
            report_schedule.release(session, push_id, f"发送结果未知（{type(exc).__name__}），为避免重复推送未自动重发",
                                    sent_maybe=True)
        return "unknown"
    with unit_of_work() as session:
        report_schedule.mark_sent(session, push_id, str(result.get("msgid") or "") or None)
    return "sent"
