"""Repayment reminders in WeCom, both enqueued by ``lending.servicing.reminders.dispatch``; each reports its
outcome to the lending domain (``reminders.mark``: once), and a WeCom error leaves the row pending and the
task retries.

- ``bot.send_repayment_reminder``: to the staff member (app message): the collector once the loan is
  assigned, else the customer's salesperson. A staff member who left or has no WeCom account is reported
  failed with the reason. The customer's name is masked.
- ``bot.send_borrower_wecom_reminder``: to the overdue borrower as a WeCom external contact, by
  ``add_msg_template`` (chat_type single, one recipient) sent as the member who holds the contact (the
  owner while still a contact, else one who is: :func:`bot.mass_messages.sender_userid`), the same way
  mass messages reach customers; the member confirms it in WeCom. The row is locked while it is sent, so two
  runs of the task send once. A borrower who opted out since the row was made is marked skipped; one who is
  no contact (any more) of any member, failed with the reason.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.gateway import get_gateway
from bot.mass_messages import sender_userid
from bot.task_support import wecom_task
from core.db import unit_of_work
from core.money import format_yuan
from crm.models import Customer, Staff, StaffStatus
from lending import contracts
from lending.models import Loan, LoanInstallment, Reminder, ReminderOptOut
from lending.servicing import reminders


def _text(reminder: Reminder, bill: LoanInstallment, loan: Loan, customer: Customer | None) -> str:
    when = reminders.label(reminder.offset_days)
    who = contracts.mask_name(customer.name if customer else None)
    state = "今日到期" if reminder.offset_days == 0 else (
        f"{-reminder.offset_days} 天后到期" if reminder.offset_days < 0 else f"已逾期 {reminder.offset_days} 天")
    return (f"还款提醒（{when}）：客户 {who} 贷款 #{loan.id} 第 {bill.number} 期 {bill.due_date.isoformat()} {state}，"
            f"未还 {format_yuan(bill.outstanding_amount)}")


@wecom_task(reminders.STAFF_TASK)
def send_repayment_reminder(reminder_id: int) -> str:
    with unit_of_work() as session:
        reminder = session.get(Reminder, reminder_id)
        if reminder is None or reminder.status != "pending" or reminder.audience != "staff":
            return "skipped"
        staff = session.get(Staff, reminder.staff_id) if reminder.staff_id else None
        if staff is None or staff.status != StaffStatus.ACTIVE or not staff.wecom_userid:
            reminders.mark(session, reminder.id, "failed", "接收人已离职或未绑定企业微信")
            return "failed"
        bill = session.get(LoanInstallment, reminder.installment_id)
        loan = session.get(Loan, reminder.loan_id)
        assert bill is not None and loan is not None
        customer = session.get(Customer, loan.customer_id)
        get_gateway().send_app_message([staff.wecom_userid], _text(reminder, bill, loan, customer))
        reminders.mark(session, reminder.id, "sent")
        return "sent"


def _borrower_text(reminder: Reminder, bill: LoanInstallment) -> str:
    return (f"【还款提醒】您的贷款第 {bill.number} 期账单（应还日 {bill.due_date.isoformat()}）已逾期 "
            f"{reminder.offset_days} 天，尚未还款 {format_yuan(bill.outstanding_amount)}，请尽快还款，以免产生更多罚息"
            "并影响信用记录。如已还款，请忽略本消息；可在小程序中退订还款提醒。")


@wecom_task(reminders.WECOM_TASK)
def send_borrower_wecom_reminder(reminder_id: int) -> str:
    with unit_of_work() as session:
        reminder = session.scalar(select(Reminder).where(Reminder.id == reminder_id).with_for_update())
        if reminder is None or reminder.status != "pending" or reminder.audience != "wecom":
            return "skipped"
        loan = session.get(Loan, reminder.loan_id)
        bill = session.get(LoanInstallment, reminder.installment_id)
        assert loan is not None and bill is not None
        if session.get(ReminderOptOut, loan.customer_id) is not None:
            reminders.mark(session, reminder.id, "skipped", reminders.OPTED_OUT)
            return "skipped"
        external, sender = session.execute(
            select(Customer.wecom_external_userid, sender_userid(Customer.wecom_external_userid, Staff.wecom_userid))
            .outerjoin(Staff, Staff.id == Customer.owner_id).where(Customer.id == loan.customer_id)).one()
        if not external:
            reminders.mark(session, reminder.id, "failed", reminders.NO_WECOM_CONTACT)
            return "failed"
        if not sender:
            reminders.mark(session, reminder.id, "failed", "客户已不是任何员工的企业微信联系人")
            return "failed"
        answer = get_gateway().add_msg_template("single", text=_borrower_text(reminder, bill),
                                                external_userids=[external], sender=sender)
        if external in [str(e) for e in answer.get("fail_list") or []]:
            reminders.mark(session, reminder.id, "failed", "企业微信：客户不是该员工的联系人")
            return "failed"
        reminders.mark(session, reminder.id, "sent")
        return "sent"
