"""Repayment reminders to the staff member in WeCom (app message): the collector once the loan is assigned,
else the customer's salesperson.

``bot.send_repayment_reminder`` (enqueued by ``lending.servicing.reminders.dispatch``) sends one pending
reminder and reports the outcome to the lending domain (``reminders.mark``: sent or failed, once). A staff
member who left or has no WeCom account is reported failed with the reason; a WeCom error leaves the row
pending and the task retries. The customer's name is masked.
"""

from __future__ import annotations

from bot.gateway import get_gateway
from bot.task_support import wecom_task
from core.db import unit_of_work
from core.money import format_yuan
from crm.models import Customer, Staff, StaffStatus
from lending import contracts
from lending.models import Loan, LoanInstallment, Reminder
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
