"""Repayment reminders delivered: the borrower's by the mini-program subscription message and the staff
member's in WeCom, both through the simulator over real HTTP; each reminder once (a second task run sends
nothing); a borrower never logged in to the mini-program or a staff member without WeCom is reported failed;
an opted-out borrower gets nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot import reminder_tasks
from core import clock, tasks
from lending.models import Reminder, ReminderOptOut
from lending.servicing import cob, reminders
from miniprogram_api import reminders as mp_reminders
from miniprogram_api import wechat
from miniprogram_api.models import MpSession
from tests.servicing_support import make_loan, on


def _loan_with_reminders(session, *, login: bool = True, wecom: str | None = "sales_wx"):
    w, loan = make_loan(session)
    w.sales.wecom_userid = wecom
    if login:
        session.add(MpSession(token_digest="d" * 64, customer_id=loan.customer_id, openid="oBorrower1",
                              created_at=clock.now(), expires_at=clock.now() + timedelta(days=3)))
    session.flush()
    first_due = loan.start_date.replace(month=12)  # 2026-12-23
    on(first_due - timedelta(days=3))
    cob.run_date(first_due - timedelta(days=3))
    rows = {r.audience: r for r in session.scalars(select(Reminder).where(Reminder.loan_id == loan.id))}
    return w, loan, rows


def test_both_channels_are_registered(session):
    assert tasks.is_registered(reminders.BORROWER_TASK) and tasks.is_registered(reminders.STAFF_TASK)
    assert tasks.is_registered(reminders.DISPATCH_TASK)


def test_borrower_and_salesperson_each_get_the_reminder_once(session, wecom_server):
    wechat.reset_token_cache()
    _, loan, rows = _loan_with_reminders(session)
    assert mp_reminders.send_repayment_reminder(rows["borrower"].id) == "sent"
    assert reminder_tasks.send_repayment_reminder(rows["staff"].id) == "sent"
    assert mp_reminders.send_repayment_reminder(rows["borrower"].id) == "skipped"
    assert reminder_tasks.send_repayment_reminder(rows["staff"].id) == "skipped"
    state = wecom_server.state()
    [sub] = [m for m in state["subscribe_messages"] if m["touser"] == "oBorrower1"]
    assert sub["data"]["thing1"]["value"] == "第 1 期账单（T-3）" and sub["data"]["amount3"]["value"] == "¥1,066.19"
    [app] = [m for m in state["app_messages"] if m["touser"] == ["sales_wx"]]
    assert "还款提醒（T-3）" in str(app["content"]) and f"贷款 #{loan.id}" in str(app["content"])
    session.expire_all()
    assert {r.status for r in session.scalars(select(Reminder).where(Reminder.loan_id == loan.id))} == {"sent"}


def test_no_mini_program_login_or_no_wecom_is_reported_failed(session, wecom_server):
    wechat.reset_token_cache()
    _, loan, rows = _loan_with_reminders(session, login=False, wecom=None)
    assert mp_reminders.send_repayment_reminder(rows["borrower"].id) == "failed"
    assert reminder_tasks.send_repayment_reminder(rows["staff"].id) == "failed"
    session.expire_all()
    errors = {r.audience: r.error for r in session.scalars(select(Reminder).where(Reminder.loan_id == loan.id))}
    assert "小程序" in errors["borrower"] and "企业微信" in errors["staff"]


def test_an_opted_out_borrower_gets_no_message(session, wecom_server):
    w, loan = make_loan(session)
    reminders.opt_out(session, loan.customer_id)
    first_due = loan.start_date.replace(month=12)
    on(first_due - timedelta(days=3))
    cob.run_date(first_due - timedelta(days=3))
    borrower = session.scalar(select(Reminder).where(Reminder.loan_id == loan.id, Reminder.audience == "borrower"))
    assert borrower.status == "skipped"
    assert mp_reminders.send_repayment_reminder(borrower.id) == "skipped"
    assert reminders.dispatch(session) == 1  # only the staff reminder is pending


def test_the_borrower_opts_out_in_the_mini_program(session, mp):
    data = mp.login("optout-borrower")
    customer_id = data.get("customer_id") or session.scalar(
        select(MpSession.customer_id).order_by(MpSession.id.desc()).limit(1))
    assert mp.client.put("/mp/reminders/opt-out", params={"out": "true"}, headers=mp.headers).json() == \
        {"opted_out": True}
    assert session.get(ReminderOptOut, customer_id) is not None
    assert mp.client.put("/mp/reminders/opt-out", params={"out": "false"}, headers=mp.headers).status_code == 200
    session.expire_all()
    assert session.get(ReminderOptOut, customer_id) is None
