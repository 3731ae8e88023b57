"""Repayment reminders to the overdue borrower's WeCom (the external contact), through the simulator over real
HTTP: one per bill, offset and channel — the database's unique key refuses a second row, and a second run of
the task sends nothing; only overdue offsets; a customer who is no WeCom contact is skipped with the reason;
an opted-out borrower gets nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot import reminder_tasks
from core import clock, outbox, tasks
from crm.models import Customer
from lending.models import Reminder
from lending.servicing import reminders
from tests.servicing_support import make_loan, on
from tests.test_admin_support import console_client, log_in


def _loan_page(session, viewer, loan) -> str:
    client = console_client()
    log_in(client, session, viewer)
    page = client.get(f"/console/lending/loans/{loan.id}")
    assert page.status_code == 200
    return page.text.split('id="reminders"', 1)[1]


def _overdue_loan(session, wecom_server, *, external: str | None):
    w, loan = make_loan(session)
    w.sales.wecom_userid = "sales_wx"
    customer = session.get(Customer, loan.customer_id)
    if external:
        wecom_server.admin("contact", {"userid": "sales_wx", "external_userid": external, "name": "借款人",
                                       "state": "", "unionid": "", "welcome": False})
        customer.wecom_external_userid = external
    session.flush()
    return w, loan, loan.start_date.replace(month=12)  # the first bill is due 2026-12-23


def _wecom_rows(session, loan):
    session.expire_all()
    return list(session.scalars(select(Reminder).where(Reminder.loan_id == loan.id, Reminder.audience == "wecom")
                                .order_by(Reminder.id)))


def _messages_to(wecom_server, external):
    return [m for m in wecom_server.state()["messages"].values()
            if any(r["external_userid"] == external for r in m["results"])]


def test_the_overdue_borrower_gets_one_wecom_message_per_bill_and_offset(session, wecom_server):
    assert tasks.is_registered(reminders.WECOM_TASK)
    w, loan, due = _overdue_loan(session, wecom_server, external="wm_borrower")
    on(due - timedelta(days=3))
    reminders.create_for(session, due - timedelta(days=3))
    assert _wecom_rows(session, loan) == []  # before the due date: mini-program and staff only
    on(due + timedelta(days=1))
    assert reminders.create_for(session, due + timedelta(days=1)) >= 1
    assert reminders.create_for(session, due + timedelta(days=1)) == 0  # a rerun makes nothing
    [row] = _wecom_rows(session, loan)
    assert (row.offset_days, row.status, row.error) == (1, "pending", None)
    with pytest.raises(IntegrityError), session.begin_nested():  # the unique key decides, not the code
        session.add(Reminder(installment_id=row.installment_id, loan_id=loan.id, offset_days=1, audience="wecom",
                             business_date=row.business_date, status="pending", created_at=clock.now()))
        session.flush()

    assert reminders.dispatch(session) >= 1
    assert (reminders.WECOM_TASK, (row.id,)) in [(t.name, t.args) for t in outbox.pending(session)]
    session.flush()
    assert reminder_tasks.send_borrower_wecom_reminder(row.id) == "sent"
    assert reminder_tasks.send_borrower_wecom_reminder(row.id) == "skipped"  # run twice: sent once
    [message] = _messages_to(wecom_server, "wm_borrower")
    assert message["creator"] == "sales_wx" and message["chat_type"] == "single"
    assert "已逾期 1 天" in message["text"]["content"] and "¥1,066.19" in message["text"]["content"]
    [row] = _wecom_rows(session, loan)
    assert row.status == "sent" and row.sent_at is not None
    card = _loan_page(session, w.finance, loan)  # the loan page lists it with its channel
    assert "借款人（企业微信）" in card and "T+1" in card and "已发送" in card


def test_no_wecom_contact_is_skipped_and_an_opt_out_is_respected(session, wecom_server):
    w, loan, due = _overdue_loan(session, wecom_server, external=None)
    on(due + timedelta(days=1))
    reminders.create_for(session, due + timedelta(days=1))
    [row] = _wecom_rows(session, loan)
    assert (row.status, row.error) == ("skipped", reminders.NO_WECOM_CONTACT)
    assert "已跳过" in _loan_page(session, w.finance, loan) and reminders.NO_WECOM_CONTACT in _loan_page(session, w.finance, loan)
    assert reminder_tasks.send_borrower_wecom_reminder(row.id) == "skipped"

    # The contact is added later; the borrower opts out after the T+3 row was made, before the next bill's T+1.
    wecom_server.admin("contact", {"userid": "sales_wx", "external_userid": "wm_later", "name": "借款人",
                                   "state": "", "unionid": "", "welcome": False})
    session.get(Customer, loan.customer_id).wecom_external_userid = "wm_later"
    on(due + timedelta(days=3))
    reminders.create_for(session, due + timedelta(days=3))
    pending = _wecom_rows(session, loan)[-1]
    assert (pending.offset_days, pending.status) == (3, "pending")
    reminders.opt_out(session, loan.customer_id)
    assert reminder_tasks.send_borrower_wecom_reminder(pending.id) == "skipped"
    assert _messages_to(wecom_server, "wm_later") == []
    [_, pending] = _wecom_rows(session, loan)
    assert (pending.status, pending.error) == ("skipped", reminders.OPTED_OUT)
    second_due = due.replace(year=due.year + 1, month=1)
    on(second_due + timedelta(days=1))
    reminders.create_for(session, second_due + timedelta(days=1))
    assert [(r.offset_days, r.status, r.error) for r in _wecom_rows(session, loan)][-1] == \
        (1, "skipped", reminders.OPTED_OUT)
