"""The audit log read as sentences: 「李经理 修改了 客户 #12：等级 B → A，需求金额 ¥200,000.00」.

The log stores codes (``customer.grade``, ``{"demand_amount": 20000000}``); this turns an entry into
what a person reads: the action's Chinese verb, the record's Chinese noun, each changed field by its
Chinese name with amounts in yuan, rates in percent, known codes by their labels. An action without a
label is named by its area's label (``lending.*`` → 贷款操作) so no raw code is ever the whole sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from core import money
from crm import sources
from crm.models import CUSTOMER_TYPE_LABELS, DATA_SCOPE_LABELS, ROLE_LABELS, STAGE_LABELS, STATUS_LABELS

ACTION_LABELS: dict[str, str] = {
    "auth.login": "登录了控制台", "auth.logout": "退出了登录", "auth.login_failed": "登录失败",
    "auth.login_locked": "因多次输错密码被锁定", "api_token.issue": "签发了 API 令牌", "api_token.revoke": "吊销了 API 令牌",
    "staff.create": "新建了员工", "staff.update": "修改了员工资料", "staff.depart": "办理了员工离职",
    "staff.skills": "修改了员工技能", "role.create": "新建了自定义角色", "role.update": "修改了自定义角色",
    "role.delete": "删除了自定义角色", "department.create": "新建了部门", "department.rename": "重命名了部门",
    "customer.update": "修改了客户资料", "customer.grade": "修改了客户等级", "customer.allocate": "分配了客户",
    "customer.claim": "从公海领取了客户", "customer.release": "把客户释放到公海", "customer.recycle": "把客户回收到公海",
    "customer.pool_move": "把客户移到另一个公海", "customer.blacklist": "把客户列入黑名单",
    "customer.unblacklist": "把客户移出黑名单", "customer.tag": "修改了客户标签", "customer.import": "导入了客户",
    "customer.collaborator.add": "添加了客户协作人", "customer.collaborator.remove": "移除了客户协作人",
    "owner.assign": "指定了客户负责人", "followup.create": "记录了跟进", "task.create": "创建了待办",
    "task.reassign": "转派了待办", "task.ping": "催办了待办",
    "visit.schedule": "预约了上门", "visit.reschedule": "改约了上门", "visit.cancel": "取消了上门预约",
    "visit.arrived": "登记客户已到店", "visit.no_show": "登记客户未到店", "visit.reassign": "转派了上门接待",
    "tag.create": "新建了标签", "tag.rename": "重命名了标签", "tag_group.create": "新建了标签组",
    "tag_group.rename": "重命名了标签组", "tag_group.delete": "删除了标签组", "tag_group.wecom_delete": "企业微信删除了标签组",
    "grade.create": "新建了客户等级", "grade.edit": "修改了客户等级定义", "grade.delete": "删除了客户等级",
    "grade.reorder": "调整了客户等级顺序", "segment.create": "新建了客户分群", "segment.update": "修改了客户分群",
    "segment.delete": "删除了客户分群", "pool.create": "新建了公海", "pool.settings": "修改了公海设置",
    "pool.recycle_rule": "修改了公海回收规则", "allocation.rule": "修改了分配规则",
    "automation.rule.create": "新建了自动化规则", "automation.rule.update": "修改了自动化规则",
    "automation.fire": "自动化规则已触发", "import.interrupted": "导入任务中断", "import.rerun": "重新运行了导入",
    "handover.open": "发起了客户交接", "handover.execute": "执行了客户交接", "handover.cancel": "取消了客户交接",
    "lending.funder.create": "新建了资方", "lending.funder.update": "修改了资方",
    "lending.product.create": "新建了贷款产品", "lending.product.new_version": "发布了产品新版本",
    "lending.product.activate": "上架了贷款产品", "lending.rules.new_version": "发布了风控规则新版本",
    "lending.workflow.save": "保存了审批流程", "lending.risk.evaluate": "完成了风控评估",
    "lending.application.fields": "修改了申请资料", "lending.application.document": "登记了已收材料",
    "lending.application.file_uploaded": "上传了申请材料文件", "lending.application.file_viewed": "查看了申请材料文件",
    "lending.application.sla_breach": "申请在节点超时", "lending.contract.draft": "生成了合同草稿",
    "lending.contract.sign": "登记了合同签署", "lending.disbursement": "登记了放款",
    "lending.loan.servicing_start": "贷款进入还款期", "lending.loan.bucket": "贷款逾期分档变化",
    "lending.loan.closed": "贷款已结清", "lending.repayment": "登记了还款", "lending.repayment.reverse": "冲正了还款",
    "lending.collection.assign": "分配了催收", "lending.application.transition": "处理了贷款申请",
    "lending.application.override": "越权批准了贷款申请",
    "referral.config": "修改了推荐设置", "referral.referrer.create": "新建了推荐人",
    "referral.referrer.status": "修改了推荐人状态", "referral.referrer.parent": "修改了推荐人上级",
    "referral.referrer.payee": "修改了推荐人收款信息", "referrer.payee": "修改了推荐人收款信息",
    "referral.rule.create": "新建了佣金规则", "referral.rule.version": "发布了佣金规则新版本",
    "referral.rule.active": "启用或停用了佣金规则", "referral.attribution.manual": "手工指定了推荐归属",
    "referral.entry.reverse": "冲回了佣金", "referral.payout.batch": "生成了佣金发放批次",
    "customer.export": "导出了客户名单（个人信息，已脱敏）", "analytics.export_requested": "提交了 Excel 导出任务",
    "referral.payout.export": "导出了佣金发放文件", "referral.payout.paid": "登记佣金已发放",
    "referral.withdrawal.request": "申请了佣金提现",
    "channel_code.create": "新建了渠道活码", "channel_code.update": "修改了渠道活码",
    "channel_code.delete": "删除了渠道活码", "channel_code.route": "渠道活码换用备用员工",
    "wecom.mass.create": "新建了群发", "wecom.mass.submit": "提交了群发", "wecom.mass.remind": "提醒员工发送群发",
    "wecom.mass.adopted": "群发重试时找回了已创建的企业微信群发任务（未重复发送）",
    "wecom.group_sync": "同步了客户群", "wecom.group_route.create": "新建了客户群分流",
    "wecom.group_route.delete": "删除了客户群分流", "wecom.mark_tag": "在企业微信打了标签",
    "wecom.mark_tag_failed": "企业微信打标签失败", "wecom.tag_push": "把标签推送到企业微信",
    "wecom.transfer.submit": "提交了企业微信客户转接", "wecom_robot.create": "新建了群机器人",
    "wecom_robot.delete": "删除了群机器人", "wecom_robot.post": "通过群机器人发了通知",
    "wecom_sim.event": "在企微模拟器触发了事件",
    "mp.login": "在小程序登录", "mp.phone_bound": "在小程序绑定了手机号", "mp.customer_merged": "小程序客户已合并",
    "mp.draft_created": "在小程序创建了申请草稿", "mp.application_submitted": "在小程序提交了贷款申请",
    "mp.document_uploaded": "在小程序上传了材料", "mp.document_deleted": "在小程序删除了材料",
    "mp.consent_document_published": "发布了授权文件", "mp.referral_attributed": "小程序推荐归属已记录",
    "pii.reveal": "查看了完整个人信息",
    "telephony.dial": "经服务器外呼了客户", "collections.case.set_tier": "手动调整了催收案件的风险等级",
    "collections.case.rerate": "预警上调了催收案件的风险等级", "agency.portal.login": "登录了委外机构工作台",
    "agency.portal.login_failed": "委外机构工作台登录失败",
}
AREA_LABELS: dict[str, str] = {
    "auth": "登录操作", "staff": "员工操作", "department": "部门操作", "customer": "客户操作", "visit": "上门预约操作",
    "task": "待办操作", "tag": "标签操作", "tag_group": "标签组操作", "grade": "等级操作", "segment": "分群操作",
    "pool": "公海操作", "automation": "自动化操作", "import": "导入操作", "handover": "交接操作",
    "lending": "贷款操作", "referral": "推荐佣金操作", "channel_code": "渠道活码操作", "wecom": "企业微信操作",
    "mp": "小程序操作", "finance": "财务操作", "payments": "支付操作", "collections": "催收操作", "pii": "个人信息操作",
    "telephony": "外呼操作", "agency": "委外机构操作",
}
ENTITY_LABELS: dict[str, str] = {
    "staff": "员工", "custom_role": "角色", "department": "部门", "customer": "客户", "api_token": "API 令牌", "visit": "上门预约",
    "task": "待办", "followup": "跟进", "tag": "标签", "tag_group": "标签组", "grade": "等级", "segment": "客户分群",
    "pool": "公海", "allocation_rule": "分配规则", "recycle_rule": "回收规则", "automation_rule": "自动化规则",
    "import_job": "导入任务", "handover_case": "交接单", "lending_funder": "资方", "lending_product": "贷款产品",
    "lending_rule_set": "风控规则", "lending_workflow": "审批流程", "lending_workflow_definition": "审批流程", "loan_application": "贷款申请",
    "lending_application": "贷款申请", "loan_contract": "合同", "lending_contract": "合同", "loan": "贷款",
    "lending_loan": "贷款", "repayment": "还款", "referrer": "推荐人", "referral_rule": "佣金规则",
    "payout_batch": "发放批次", "withdrawal": "提现", "channel_code": "渠道活码", "mass_message": "群发",
    "wecom_robot": "群机器人", "group_route": "客户群分流", "consent_document": "授权文件", "mp_document": "材料",
}
FIELD_LABELS: dict[str, str] = {
    "name": "名称", "display_name": "姓名", "username": "登录名", "phone": "手机号", "mobile": "手机号",
    "id_number": "身份证号", "region": "地区", "source": "来源", "source_detail": "来源说明",
    "customer_type": "客户类型", "customer_types": "客户类型", "grade": "等级", "stage": "阶段", "status": "状态",
    "role": "角色", "data_scope": "数据范围", "permissions": "权限", "department_id": "部门", "parent_id": "上级", "owner_id": "负责人",
    "from_staff_id": "原员工", "staff_id": "员工", "collector_staff_id": "催收员", "reception_staff_id": "接待人",
    "pool_id": "公海", "customer_id": "客户", "application_id": "申请", "referrer_id": "推荐人",
    "amount": "金额", "principal_amount": "本金", "demand_amount": "需求金额", "approved_amount": "批准金额",
    "credit_limit_amount": "授信额度", "annual_rate": "年利率", "demand_term_months": "需求期限（月）",
    "term_months": "期限（月）", "reason": "原因", "note": "备注", "title": "标题", "label": "名称", "code": "编码",
    "version": "版本", "version_id": "版本号", "rules": "规则数", "credit_limit_expression": "授信额度公式",
    "count": "数量", "total": "合计", "rows": "行数", "customers": "客户数", "tasks": "待办数", "visits": "预约数",
    "node": "节点", "action": "操作", "kind": "类型", "scheduled_at": "预约时间", "overdue_days": "逾期天数",
    "bucket": "逾期分档", "day": "日期", "month": "月份", "hours": "小时数", "filename": "文件名", "number": "编号",
    "channel": "渠道", "trigger": "触发条件", "active": "启用", "verdict": "风控结论", "outcome": "结论",
    "currency_digits": "金额精度", "funder_type": "资方类型", "repayment_id": "还款", "reversal_id": "冲正记录",
    "rerun_of": "重跑自", "lock_days": "锁定天数", "max_levels": "层级数", "field": "字段", "userid": "企业微信账号",
    "group": "分组", "scene": "场景", "distinct_reviewers": "审批人分离", "nodes": "节点", "msgtype": "消息类型", "prefix": "前缀", "key_hint": "密钥提示",
}
_VALUE_LABELS: dict[str, dict[str, str]] = {
    "customer_type": CUSTOMER_TYPE_LABELS, "stage": STAGE_LABELS, "role": ROLE_LABELS,
    "data_scope": DATA_SCOPE_LABELS,
    "status": {**STATUS_LABELS, "active": "在职/启用", "departed": "已离职", "open": "待处理", "done": "已完成",
               "cancelled": "已取消", "approved": "已批准", "rejected": "已拒绝"},
    "outcome": {"pass": "通过", "warn": "提示", "manual_review": "转人工审核", "reject": "拒绝"},
    "verdict": {"pass": "通过", "warn": "提示", "manual_review": "转人工审核", "reject": "拒绝"},
}


@dataclass(frozen=True)
class Change:
    field: str
    before: str | None
    after: str | None

    def text(self) -> str:
        if self.before is None:
            return f"{self.field} {self.after}"
        if self.after is None:
            return f"{self.field} {self.before} → （无）"
        return f"{self.field} {self.before} → {self.after}"


def actor_label(label: str | None) -> str:
    return "系统" if not label or label == "system" else label


def action_label(action: str) -> str:
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    area = action.split(".")[0]
    return AREA_LABELS.get(area, "其他操作")


def entity_label(entity_type: str | None, entity_id: str | None) -> str:
    if not entity_type:
        return ""
    noun = ENTITY_LABELS.get(entity_type, "记录")
    return f"{noun} #{entity_id}" if entity_id else noun


def _value(key: str, value: Any) -> str:
    if value is None or value == "":
        return "（空）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if key.endswith("_amount") and isinstance(value, int):
        return money.format_yuan(value)
    if key.endswith("_rate"):
        try:
            return f"{(Decimal(str(value)) * 100).normalize():f}%"
        except InvalidOperation:
            return str(value)
    if key == "source":
        return sources.label(str(value))
    if isinstance(value, list):
        return "、".join(_value(key, v) for v in value) if value else "（无）"
    if isinstance(value, dict):
        return "；".join(f"{FIELD_LABELS.get(k, k)} {_value(k, v)}" for k, v in value.items())
    if isinstance(value, str) and key in _VALUE_LABELS:
        return _VALUE_LABELS[key].get(value, value)
    return str(value)


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[Change]:
    """Each field of before/after once, by its Chinese name; fields without a name are skipped."""
    before, after = before or {}, after or {}
    out: list[Change] = []
    for key in [*before, *(k for k in after if k not in before)]:
        label = FIELD_LABELS.get(key)
        if label is None:
            continue
        old = _value(key, before[key]) if key in before else None
        new = _value(key, after[key]) if key in after else None
        if key in before and key in after and old == new:
            continue
        out.append(Change(label, old, new))
    return out


def sentence(actor_label: str, action: str, entity_type: str | None, entity_id: str | None,
             before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """「actor verb record：field old → new，…」"""
    head = f"{actor_label or '系统'} {action_label(action)}"
    record = "" if action.startswith("auth.") else entity_label(entity_type, entity_id)  # one's own account
    if record:
        head += f" {record}"
    parts = [c.text() for c in changes(before, after)]
    return head + ("：" + "，".join(parts) if parts else "")
