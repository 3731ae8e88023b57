"""Repayment reminders to the borrower as a mini-program subscription message (订阅消息).

``miniprogram.send_repayment_reminder`` (enqueued by ``lending.servicing.reminders.dispatch``) sends one
pending reminder to the openid of the borrower's latest mini-program login and reports the outcome to the
lending domain (``reminders.mark``: sent or failed, once). A borrower never logged in to the mini-program, or
who refused the template, is reported failed with the reason. A crash between the send and the commit may
repeat that one message on the task's retry (at least once); a reminder already marked is never sent again.
"""

from __future__ import annotations

from sqlalchemy import select

from core.db import unit_of_work
from core.errors import AppError
from core.money import format_yuan
from core.settings import get_settings
from core.tasks import task
from lending.models import Loan, LoanInstallment, Reminder
from lending.servicing import reminders
from miniprogram_api.models import MpSession
from miniprogram_api.wechat import WechatClient


def _text(reminder: Reminder, bill: LoanInstallment) -> dict[str, str]:
    when = reminders.label(reminder.offset_days)
    note = "请按时还款" if reminder.offset_days <= 0 else f"已逾期 {reminder.offset_days} 天，请尽快还款"
    return {"thing1": f"第 {bill.number} 期账单（{when}）", "date2": bill.due_date.isoformat(),
            "amount3": format_yuan(bill.outstanding_amount), "thing4": note}


@task(reminders.BORROWER_TASK)
def send_repayment_reminder(reminder_id: int) -> str:
    with unit_of_work() as session:
        reminder = session.get(Reminder, reminder_id)
        if reminder is None or reminder.status != "pending" or reminder.audience != "borrower":
            return "skipped"
        bill = session.get(LoanInstallment, reminder.installment_id)
        loan = session.get(Loan, reminder.loan_id)
        assert bill is not None and loan is not None
        openid = session.scalar(select(MpSession.openid).where(MpSession.customer_id == loan.customer_id)
                                .order_by(MpSession.id.desc()).limit(1))
        if openid is None:
            reminders.mark(session, reminder.id, "failed", "客户未登录过小程序，无法发送订阅消息")
            return "failed"
        try:
            WechatClient().send_subscribe_message(openid, get_settings().wechat_reminder_template_id,
                                                  _text(reminder, bill), page=f"pages/loans/detail?id={loan.id}")
        except AppError as exc:
            reminders.mark(session, reminder.id, "failed", exc.message)
            return "failed"
        reminders.mark(session, reminder.id, "sent")
        return "sent"
