"""Who may open what in the console, and the navigation built from it.

Later features add their pages here: one :class:`NavItem` each, with the roles that see it. The menu
group (客户, 工作, 贷款 …) follows from the item's URL (:data:`GROUP_BY_PREFIX`), so a new page lands in
the right group without naming one; :data:`GROUP_BY_KEY` (or ``NavItem.group``) overrides it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analytics import channel_costs
from core.settings import get_settings
from crm import automation, custom_fields, handover, roles
from crm.importer import uploads
from crm.models import Role
from crm.permissions import BUILTIN_ROLES, WECOM_MASS, WECOM_OPS, Permission, permission
from finance import access as finance_access
from lending.servicing import book_import
from postloan import actions

# Every gate below is a named permission (crm.permissions): built-in roles hold it as listed, a custom role
# when it lists the key. The role editor (设置 → 角色权限) offers them with their label and description.
ALL_ROLES: Permission = permission("console.basic", "基础页面", "首页、我的工作、公海、申请和贷后列表（按数据范围）",
                                   BUILTIN_ROLES, everyone=True)
# Staff management (create, edit, depart) and the audit log.
STAFF_MANAGERS: Permission = permission("staff.manage", "员工管理", "新增、编辑员工，办理离职，分配角色",
                                        {Role.ADMIN, Role.MANAGER})
AUDIT_READERS: Permission = permission("audit.read", "审计日志", "查看谁在何时做了什么", {Role.ADMIN, Role.MANAGER})
# Reading the staff list and the department tree (always limited to the viewer's data scope).
ORG_READERS: Permission = permission("org.read", "查看员工与部门", "员工列表和部门树（按数据范围）",
                                     {Role.ADMIN, Role.MANAGER, Role.SUPERVISOR})
# Changing the department tree.
ORG_EDITORS: Permission = permission("org.edit", "编辑部门", "新建、改名、移动部门", {Role.ADMIN})
# Roles (custom roles from named permissions) and the company settings page.
ROLE_EDITORS: Permission = roles.ROLE_EDITORS
COMPANY_SETTINGS: Permission = permission("company.settings", "公司设置", "查看企业微信、小程序、支付、外呼的接入状态",
                                          {Role.ADMIN, Role.MANAGER})
# Customers: everyone reads their own scope; blacklisting (and lifting it) is for managers.
CUSTOMER_READERS: Permission = ALL_ROLES
CUSTOMER_MANAGERS: Permission = permission("customers.manage", "客户管理", "拉黑与解除拉黑、改派负责人、管理他人客户",
                                           {Role.ADMIN, Role.MANAGER, Role.SUPERVISOR}, group="客户")
# Handing a salesperson's customers over (离职交接 / 在职转接), within one's data scope.
HANDOVER_MANAGERS: Permission = handover.HANDOVER_ROLES
IMPORTERS: Permission = uploads.IMPORTERS
TAG_USERS: Permission = permission("tags.use", "客户标签与分群", "查看标签、使用客户分群",
                                   {Role.ADMIN, Role.MANAGER, Role.SUPERVISOR, Role.SALES}, group="客户")

# Lending products (产品) and risk rules (风控规则): admins, managers and risk staff.
LENDING_PRODUCT_STAFF: Permission = permission("lending.products", "产品与风控规则", "查看产品，查看并维护风控规则",
                                               {Role.ADMIN, Role.MANAGER, Role.RISK}, group="贷款")

PRODUCT_EDITORS: Permission = permission("lending.products.edit", "编辑产品", "新建和修改贷款产品、资方与费率",
                                         {Role.ADMIN, Role.MANAGER}, group="贷款")

# Loan applications: the workflow designer (managers, admins); disbursement is checked in lending.disbursement.
WORKFLOW_EDITORS: Permission = permission("lending.workflow", "审批流程设计", "设计贷款审批流程的节点和流转",
                                          {Role.ADMIN, Role.MANAGER}, group="贷款")

# Servicing (贷后): the loan list is data-scoped for everyone; the collections queue is for collections staff.
COLLECTIONS_STAFF: Permission = actions.COLLECTORS | actions.MANAGERS
AGENCY_MANAGERS: Permission = actions.MANAGERS

# 任务队列 (the durable outbox: waiting and dead background tasks, resending them): admins.
OUTBOX_ADMINS: Permission = permission("outbox.manage", "任务队列", "查看并重发后台任务", {Role.ADMIN})
# Payments (支付、代扣、对账): finance, managers and admins.
PAYMENT_STAFF: Permission = permission("payments.manage", "支付结算", "支付订单、代扣、对账",
                                       {Role.ADMIN, Role.MANAGER, Role.FINANCE}, group="财务")
REFERRAL_STAFF: Permission = permission("referral.manage", "推荐佣金", "推荐人、佣金规则与发放",
                                        {Role.ADMIN, Role.MANAGER, Role.FINANCE}, group="财务")
REFERRAL_RULE_EDITORS: Permission = permission("referral.rules", "佣金规则", "新建和修改推荐佣金规则",
                                               {Role.ADMIN, Role.MANAGER}, group="财务")
# Finance center: finance, managers and admins for the money; sales and supervisors for their own cases.
FINANCE_STAFF: Permission = permission("finance.ledger", "总账与月结", "财务总账、凭证与月结",
                                       {Role.ADMIN, Role.MANAGER, Role.FINANCE}, group="财务")
FINANCE_CASE_STAFF: Permission = permission("finance.cases", "签单与做单", "签单、定金、做单、结算、报销（按数据范围）",
                                            {Role.ADMIN, Role.MANAGER, Role.FINANCE, Role.SUPERVISOR, Role.SALES},
                                            group="财务")
FINANCE_REPORT_READERS: Permission = finance_access.REPORT_READERS

# Consent documents (授权协议: 隐私政策, 共享授权书): publishing and the list of who consented.
CONSENT_PUBLISHERS: Permission = permission("consents.publish", "授权协议", "发布隐私政策与资方共享授权书的新版本，查看谁已同意",
                                            {Role.ADMIN, Role.MANAGER})

LOAN_BOOK_IMPORTERS: Permission = book_import.IMPORTERS

# Automation rules (work area): managers and admins.
RULE_EDITORS: Permission = automation.RULE_EDITORS
CUSTOM_FIELD_DEFINERS: Permission = custom_fields.DEFINERS
# WeCom operations (served by the bot by URL): channel codes, robots, groups, tag sync; mass messages.
WECOM_MANAGERS: Permission = WECOM_OPS
MASS_SENDERS: Permission = WECOM_MASS


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    url: str
    roles: Permission = ALL_ROLES
    shown: Callable[[], bool] | None = None  # a condition besides the role (e.g. a setting)
    group: str | None = None  # the menu group; None: derived from the URL (group_of)


NAV: list[NavItem] = [
    NavItem("home", "首页", "/console/"),
    NavItem("customers", "客户", "/console/customers", CUSTOMER_READERS),
    NavItem("pool", "公海", "/console/pool"),
    NavItem("imports", "批量导入", "/console/imports", IMPORTERS),
    NavItem("tags", "标签", "/console/tags", TAG_USERS),
    NavItem("segments", "客户分群", "/console/segments", TAG_USERS),
    NavItem("staff", "员工", "/console/staff", ORG_READERS | STAFF_MANAGERS),
    NavItem("departments", "部门", "/console/departments", ORG_READERS),
    NavItem("handover", "客户交接", "/console/handover", HANDOVER_MANAGERS),
    NavItem("audit", "审计日志", "/console/audit", AUDIT_READERS),
    NavItem("outbox", "任务队列", "/console/outbox", OUTBOX_ADMINS),
    NavItem("work", "我的工作", "/console/work/today"),
    NavItem("visits", "上门预约", "/console/work/visits"),
    NavItem("rules", "自动化规则", "/console/work/rules", RULE_EDITORS),
    NavItem("lending_products", "产品", "/console/lending/products", LENDING_PRODUCT_STAFF),
    NavItem("lending_risk", "风控规则", "/console/lending/risk", LENDING_PRODUCT_STAFF),
    NavItem("lending_applications", "贷款申请", "/console/lending/applications"),
    NavItem("lending_workflow", "审批流程", "/console/lending/workflow", WORKFLOW_EDITORS),
    NavItem("lending_book_import", "存量贷款导入", "/console/lending/book-import", LOAN_BOOK_IMPORTERS),
    NavItem("lending_loans", "贷后管理", "/console/lending/loans"),
    NavItem("lending_bills", "还款账单", "/console/lending/bills"),  # every loan's installments by due date
    NavItem("lending_collections", "催收队列", "/console/lending/collections", COLLECTIONS_STAFF),
    NavItem("collections_cases", "催收案件", "/console/collections/cases", COLLECTIONS_STAFF),
    NavItem("collections_calls", "通话记录", "/console/collections/calls", COLLECTIONS_STAFF),
    NavItem("collections_agencies", "委外管理", "/console/collections/agencies", AGENCY_MANAGERS),
    # 支付订单 · 代扣 · 代扣授权 · 对账: one entry, the four pages are tabs under /console/payments
    NavItem("payments", "支付结算", "/console/payments", PAYMENT_STAFF),
    NavItem("referral", "推荐佣金", "/console/referral", REFERRAL_STAFF),
    # Finance center (财务中心): every page under /console/finance, scoped by the case's sales and case officer.
    NavItem("finance_agreements", "签单", "/console/finance/agreements", FINANCE_CASE_STAFF),
    NavItem("finance_deposits", "定金列表", "/console/finance/deposits", FINANCE_CASE_STAFF),
    NavItem("finance_work", "做单中心", "/console/finance/work", FINANCE_CASE_STAFF),
    NavItem("finance_settlements", "结算管理", "/console/finance/settlements", FINANCE_CASE_STAFF),
    NavItem("finance_reimbursements", "做单报销", "/console/finance/reimbursements", FINANCE_CASE_STAFF),
    NavItem("finance_performance", "财务业绩", "/console/finance/performance", FINANCE_REPORT_READERS),
    NavItem("finance_ledger", "总账与月结", "/console/finance/ledger", FINANCE_STAFF),
    # 自定义报表: everyone sees the reports shared with their role (within their data scope); managers build them.
    NavItem("reports", "自定义报表", "/console/reports"),
    NavItem("channel_costs", "渠道成本", "/console/analytics/channel-costs", channel_costs.COST_EDITORS),
    NavItem("custom_fields", "自定义字段", "/console/settings/custom-fields", CUSTOM_FIELD_DEFINERS),
    NavItem("consents", "授权协议", "/console/consents", CONSENT_PUBLISHERS),
    NavItem("roles", "角色权限", "/console/settings/roles", ROLE_EDITORS),
    NavItem("company", "公司设置", "/console/settings/company", COMPANY_SETTINGS),
    NavItem("tokens", "API 令牌", "/console/tokens"),
    # Served by the bot (a URL, not an import): 渠道活码 live in WeCom.
    NavItem("channels", "渠道活码", "/wecom/channels", WECOM_MANAGERS),
    # Served by the bot (a URL, not an import): team group robots and announcements.
    NavItem("wecom_robots", "群机器人", "/wecom/robots", WECOM_MANAGERS),
    # Served by the bot (a URL, not an import): mass messages, group chats and routes, corp tag sync.
    NavItem("wecom_mass", "群发", "/wecom/mass", MASS_SENDERS),
    NavItem("wecom_groups", "客户群", "/wecom/groups", WECOM_MANAGERS),
    NavItem("wecom_tags", "企微标签同步", "/wecom/tags", WECOM_MANAGERS),
    # Served by the bot's simulator (a URL, not an import): only while WeCom is simulated.
    NavItem("wecom_sim", "企微模拟器", "/_wecom_sim/console", WECOM_MANAGERS,
            shown=lambda: get_settings().wecom_simulated),
    # Served by the payment simulator (a URL): only while payments are simulated.
    NavItem("pay_sim", "支付模拟器", "/_pay_sim/", PAYMENT_STAFF,
            shown=lambda: _payments_simulated()),
    # Served by the telephony simulator (a URL): only while telephony is simulated.
    NavItem("tel_sim", "外呼模拟器", "/_tel_sim/", COLLECTIONS_STAFF, shown=lambda: _telephony_simulated()),
]


def _payments_simulated() -> bool:
    from payments.simulator import is_active

    return is_active()


def _telephony_simulated() -> bool:
    from postloan.telephony.simulator import is_active

    return is_active()


def nav_for(role: str) -> list[NavItem]:
    return [item for item in NAV if role in item.roles and (item.shown is None or item.shown())]


# Menu groups, in menu order. 首页 stands above them.
GROUPS: tuple[str, ...] = ("客户", "工作", "贷款", "财务", "贷后", "企微运营", "报表", "设置")
OTHER_GROUP = "其他"  # a URL no prefix below knows (shown last, so nothing disappears)

# URL prefix -> group; the longest matching prefix wins.
GROUP_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("/console/customers", "客户"), ("/console/pool", "客户"), ("/console/imports", "客户"),
    ("/console/tags", "客户"), ("/console/segments", "客户"), ("/console/handover", "客户"),
    ("/console/work", "工作"),
    ("/console/lending", "贷款"),
    ("/console/lending/loans", "贷后"), ("/console/lending/bills", "贷后"),
    ("/console/lending/collections", "贷后"), ("/console/collections", "贷后"),
    ("/console/servicing", "贷后"),
    ("/console/finance", "财务"), ("/console/payments", "财务"), ("/console/referral", "财务"),
    ("/wecom", "企微运营"), ("/_wecom_sim", "企微运营"), ("/console/wecom", "企微运营"),
    ("/console/analytics", "报表"), ("/console/reports", "报表"), ("/console/dashboards", "报表"),
    ("/console/staff", "设置"), ("/console/departments", "设置"), ("/console/roles", "设置"),
    ("/console/settings", "设置"), ("/console/audit", "设置"), ("/console/tokens", "设置"),
    ("/console/consents", "设置"), ("/console/outbox", "设置"), ("/_pay_sim", "财务"),
    ("/_tel_sim", "贷后"),
)
# Explicit exceptions by item key (an item may also name its group itself).
GROUP_BY_KEY: dict[str, str] = {"finance_performance": "报表"}  # a report, though its URL is finance's


def _prefix_matches(url: str, prefix: str) -> bool:
    return url == prefix or url.startswith(prefix.rstrip("/") + "/") or url.startswith(prefix + "?")


def group_of(item: NavItem) -> str | None:
    """The item's menu group; None for the home page."""
    if item.group:
        return item.group
    if item.key in GROUP_BY_KEY:
        return GROUP_BY_KEY[item.key]
    if item.url.rstrip("/") == "/console":
        return None
    matches = [(len(prefix), group) for prefix, group in GROUP_BY_PREFIX if _prefix_matches(item.url, prefix)]
    return max(matches)[1] if matches else OTHER_GROUP


@dataclass(frozen=True)
class NavGroup:
    label: str
    items: list[NavItem]


def grouped_nav_for(role: str) -> tuple[list[NavItem], list[NavGroup]]:
    """(the items above the groups, the non-empty groups in menu order) for one role."""
    top: list[NavItem] = []
    groups: dict[str, list[NavItem]] = {}
    for item in nav_for(role):
        group = group_of(item)
        if group is None:
            top.append(item)
        else:
            groups.setdefault(group, []).append(item)
    order = [*GROUPS, OTHER_GROUP]
    extra = sorted(g for g in groups if g not in order)
    return top, [NavGroup(g, groups[g]) for g in [*order, *extra] if g in groups]


def active_item(items: list[NavItem], path: str) -> NavItem | None:
    """The menu item a path belongs to: the longest URL that is the path or a parent of it."""
    best: NavItem | None = None
    for item in items:
        url = item.url.rstrip("/") or "/"
        hit = path.rstrip("/") == url if url == "/console" else _prefix_matches(path, url)
        if hit and (best is None or len(item.url) > len(best.url)):
            best = item
    return best
