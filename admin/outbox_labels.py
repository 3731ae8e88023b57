"""Chinese names of the tasks, for the console's 任务队列 page (the code is shown beside, small)."""

from __future__ import annotations

TASK_LABELS: dict[str, str] = {
    "bot.mark_tags": "企微客户打标签",
    "bot.poll_mass_messages": "查询群发结果",
    "bot.poll_transfers": "查询转接结果",
    "bot.process_inbox": "处理企微回调",
    "bot.process_inbox_urgent": "处理企微回调（加急）",
    "bot.push_notifications": "推送员工通知",
    "bot.restore_channel_codes": "恢复渠道活码",
    "bot.send_borrower_wecom_reminder": "企微还款提醒（借款人）",
    "bot.send_mass_message": "发送群发消息",
    "bot.send_repayment_reminder": "企微还款提醒（员工）",
    "bot.sweep_inbox": "补处理积压回调",
    "bot.sweep_notifications": "补推送通知",
    "bot.sync_corp_tags": "同步企微标签",
    "bot.sync_group_chats": "同步客户群",
    "bot.transfer_customers": "企微客户转接",
    "core.ping": "连通性检查",
    "core.ratelimit_purge": "清理限流记录",
    "crm.automation_scan": "自动化规则扫描",
    "crm.customer_changed": "客户变更事件",
    "crm.expire_import_jobs": "标记中断的导入",
    "crm.followup_reminders": "跟进提醒",
    "crm.import_leads": "批量导入线索",
    "crm.recycle_pool": "公海回收",
    "lending.loan_closed": "贷款结清事件",
    "lending.loan_disbursed": "放款事件",
    "lending.repayment_recorded": "还款入账事件",
    "lending.repayment_reversed": "还款冲正事件",
    "lending.roll_over_bills": "账单滚动（逾期计算）",
    "lending.sla_reminders": "审批时效提醒",
    "miniprogram.purge": "清理小程序过期数据",
    "referral.confirm_commissions": "确认推荐佣金",
}


def task_label(name: str) -> str:
    return TASK_LABELS.get(name, "其他任务")
