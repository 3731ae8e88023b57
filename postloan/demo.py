"""Demo data for collections: the collector's first calls on the demo's overdue loans.

Runs after lending's demo (``core.plugins.APPS`` order), whose nightly rollover put the overdue loans in
buckets, gave them to the demo collector and opened their cases; lending itself never imports collections.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from crm.models import Staff
from crm.scope import Viewer
from lending.models import Loan
from lending.servicing import repayments as repayment_service
from postloan import actions, scripts
from postloan.models import CollectionAction


def seed(session: Session) -> list[str]:
    if session.scalar(select(CollectionAction.id).where(CollectionAction.kind == "call").limit(1)) is not None:
        return []
    collector = session.scalar(select(Staff).where(Staff.username == "collector"))
    if collector is None:
        return []
    viewer = Viewer.of(collector)
    overdue = list(session.scalars(select(Loan).where(Loan.bucket != "C", Loan.collector_staff_id == collector.id)
                                   .order_by(Loan.overdue_days, Loan.id)))
    if not overdue:
        return []
    manager = session.scalar(select(Staff).where(Staff.username == "manager"))
    if manager is not None:  # one general script and a firmer one for M3+ (话术), shown beside each case
        scripts.save_script(session, Viewer.of(manager), name="通用提醒",
                            body="{name}您好，您的借款已逾期 {days_overdue} 天，逾期应还 {amount_due}，请今天安排还款。")
        scripts.save_script(session, Viewer.of(manager), name="M3+ 严肃告知", bucket="M3+",
                            body="{name}您好，您的借款已逾期 {days_overdue} 天，未还合计 {outstanding}。"
                                 "请于 {next_date} 前处理，否则将按合同约定进一步处理。")
    # the calls come after the cases' assignment (now)
    for i, loan in enumerate(overdue):
        if i == 0:  # the freshest: a promise to pay
            actions.log_action(session, loan.id, viewer=viewer, kind="call", outcome="承诺还款",
                               note="客户称工资延迟发放，下周五前还清", promised_date=clock.today() + timedelta(days=5),
                               promised_amount=repayment_service.payable(session, loan))
        else:
            actions.log_action(session, loan.id, viewer=viewer, kind="call", outcome="无人接听",
                               note="上午拨打两次未接通，已发短信提醒")
    return [f"演示催收：{len(overdue)} 笔逾期贷款的首轮电话（其中一笔承诺还款），2 条话术"]
