"""The chat sidebar (聊天工具栏): what a salesperson sees and does beside a WeCom chat.

The page (:mod:`bot.sidebar_routes`, under ``/wecom/sidebar``) learns from the JS-SDK who the chat is
with (an external contact, or a customer group) and asks this module for:

- the customer card: name, masked phone, stage, owner, tags, the last follow-ups, the loan
  applications and their state; only within the salesperson's data scope (``crm.customers.can_view``);
- a group's customers (the members of the group chat that are customers the viewer may see);
- the customer's qualification (资质, personal figures masked) and custom fields, both editable
  (``crm.qualification``, ``crm.custom_fields``);
- the quick actions, each through its domain's own service: tag (``crm.tags``), follow-up
  (``crm.followups.log_followup``), reminder (a to-do with a due time, ``crm.followups.create_task``),
  loan application (``lending.applications.start_application``, channel "wecom");
- what to send into the chat (``sendChatMessage``): a product card (news) or the mini-program's apply
  page. Sending is done by the JS-SDK in the salesperson's client; the server only composes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.models import GroupChat, GroupChatMember
from core import clock
from core.errors import NotFound, ValidationFailed
from core.money import format_yuan
from core.settings import get_settings
from crm import custom_fields, customers, followups, qualification, tags
from crm.models import FOLLOWUP_KIND_LABELS, STAGE_LABELS, Customer, FollowUp, Staff, StaffStatus
from crm.scope import Viewer
from lending import applications, matching, products
from lending.models import APPLICATION_STATUS_LABELS, Application, Product

SIMULATOR_MP_APPID = "wxsimulatormp0001"  # the WeChat simulator's demo mini-program (miniprogram_api.wechat)
MP_APPLY_PAGE = "pages/index/index"
PRODUCT_PAGE = "/wecom/sidebar/product/"  # the public page a product card opens (bot.sidebar_routes)
FOLLOWUPS_SHOWN = 5
APPLICATIONS_SHOWN = 10


class ContactNotCustomer(NotFound):
    code = "sidebar_contact_not_customer"
    message = "该联系人还不是系统中的客户，或不在您的数据范围内"


class ChatNotFound(NotFound):
    code = "sidebar_chat_not_found"
    message = "系统中还没有这个客户群（群创建后的回调到达后即可看到）"


@dataclass(frozen=True)
class SidebarStaff:
    staff_id: int
    name: str
    viewer: Viewer


def staff_by_userid(session: Session, userid: str) -> Staff | None:
    """The active staff member behind a WeCom userid (from the OAuth code)."""
    if not userid:
        return None
    return session.scalar(select(Staff).where(Staff.wecom_userid == userid, Staff.status == StaffStatus.ACTIVE))


def _when(value: datetime | None) -> str:
    return clock.ensure_aware(value).astimezone(clock.BUSINESS_TZ).strftime("%m-%d %H:%M") if value else ""


def _customer_by_external(session: Session, viewer: Viewer, external_userid: str) -> Customer:
    customer = session.scalar(select(Customer).where(Customer.wecom_external_userid == external_userid)
                              .order_by(Customer.id).limit(1))
    if customer is None or not customers.can_view(session, viewer, customer):
        raise ContactNotCustomer()
    return customer


def card(session: Session, viewer: Viewer, customer: Customer) -> dict[str, Any]:
    owner = session.get(Staff, customer.owner_id) if customer.owner_id else None
    recent = followups.list_followups(session, viewer, customer.id, limit=FOLLOWUPS_SHOWN)
    authors = dict(session.execute(select(Staff.id, Staff.display_name).where(
        Staff.id.in_({f.staff_id for f in recent}))).all()) if recent else {}
    apps = session.execute(select(Application, Product.name).join(Product, Product.id == Application.product_id)
                           .where(Application.customer_id == customer.id)
                           .order_by(Application.id.desc()).limit(APPLICATIONS_SHOWN)).all()
    return {
        "id": customer.id, "name": customer.name or "（未填姓名）", "phone_masked": customer.phone_masked or "",
        "stage": STAGE_LABELS.get(customer.stage, customer.stage), "owner": owner.display_name if owner else "公海",
        "mine": customer.owner_id == viewer.staff_id,
        "next_followup_at": _when(customer.next_followup_at),
        "tags": [{"id": t.id, "name": t.name} for t in tags.tags_of(session, customer.id)],
        "followups": [_followup(f, authors) for f in recent],
        "qualification": [{"name": f["name"], "label": f["label"], "value": f["value"], "shown": f["shown"],
                           "sealed": f["name"] in qualification.SEALED_FIELDS}
                          for f in qualification.read(session, viewer, customer.id)["fields"]],
        "custom_fields": custom_fields.shown_values(session, customer),
        "applications": [{"id": a.id, "product": name, "amount": format_yuan(a.requested_amount),
                          "term_months": a.term_months, "status": APPLICATION_STATUS_LABELS.get(a.status, a.status),
                          "created_at": _when(a.created_at)} for a, name in apps],
        "matching": matching_summary(session, customer),
    }


def matching_summary(session: Session, customer: Customer) -> dict[str, Any]:
    """产品匹配 for the customer's recorded demand: one line per product, the fitting ones first, then
    需补充资料 with the facts to supply, then the others with their reasons (lending.matching)."""
    try:
        result = matching.match_products(session, matching.demand_of(customer), matching.profile_of(customer))
    except ValidationFailed as exc:
        return {"note": exc.message, "rows": []}
    rows = [{"state": "ok", "label": "适合", "name": m.product.name,
             "detail": f"综合年化 {m.quote.apr_percent}% · 月供约 {format_yuan(m.monthly_payment)}"}
            for m in result.matches]
    rows += [{"state": "needs", "label": "需补充资料", "name": m.product.name,
              "detail": "待补充：" + "；".join(m.missing)} for m in result.needs_info]
    rows += [{"state": "no", "label": "不适合", "name": e.product.name, "detail": "；".join(e.reasons)}
             for e in result.excluded]
    return {"note": f"需求 {format_yuan(customer.demand_amount or 0)} · {customer.demand_term_months} 个月", "rows": rows}


def _followup(f: FollowUp, authors: dict[int, str]) -> dict[str, Any]:
    return {"at": _when(f.created_at), "kind": FOLLOWUP_KIND_LABELS.get(f.kind, f.kind), "content": f.content,
            "outcome": f.outcome or "", "by": authors.get(f.staff_id, "")}


def contact_card(session: Session, viewer: Viewer, external_userid: str) -> dict[str, Any]:
    return card(session, viewer, _customer_by_external(session, viewer, external_userid))


def customer_card(session: Session, viewer: Viewer, customer_id: int) -> dict[str, Any]:
    return card(session, viewer, customers.get_customer(session, viewer, customer_id))


def group_customers(session: Session, viewer: Viewer, chat_id: str) -> dict[str, Any]:
    """The customers in a customer group (客户群) that the viewer may see; the others are counted."""
    chat = session.scalar(select(GroupChat).where(GroupChat.chat_id == chat_id))
    if chat is None:
        raise ChatNotFound()
    rows = session.scalars(select(Customer).join(GroupChatMember, GroupChatMember.customer_id == Customer.id)
                           .where(GroupChatMember.chat_id == chat_id, GroupChatMember.left_at.is_(None),
                                  GroupChatMember.member_type == 2)
                           .where(customers.visible_clause(viewer)).order_by(Customer.name, Customer.id)).all()
    external = session.scalar(select(func.count()).select_from(GroupChatMember).where(
        GroupChatMember.chat_id == chat_id, GroupChatMember.left_at.is_(None), GroupChatMember.member_type == 2)) or 0
    return {"chat": {"chat_id": chat.chat_id, "name": chat.name or "客户群"},
            "external_members": external,
            "customers": [{"id": c.id, "name": c.name or "（未填姓名）", "phone_masked": c.phone_masked or "",
                           "stage": STAGE_LABELS.get(c.stage, c.stage)} for c in rows]}


# --- quick actions ------------------------------------------------------------------------------------

def add_tag(session: Session, viewer: Viewer, customer_id: int, tag_id: int) -> dict[str, Any]:
    tags.tag_customer(session, viewer, customer_id, [tag_id])
    return customer_card(session, viewer, customer_id)


def save_qualification(session: Session, viewer: Viewer, customer_id: int,
                       changes: dict[str, Any]) -> dict[str, Any]:
    """资质 edited in the sidebar: the sealed figures left empty are unchanged (they are never sent to the page)."""
    kept = {k: v for k, v in changes.items() if k not in qualification.SEALED_FIELDS or v not in (None, "")}
    qualification.update(session, viewer, customer_id, kept)
    return customer_card(session, viewer, customer_id)


def save_custom_fields(session: Session, viewer: Viewer, customer_id: int, values: dict[str, Any]) -> dict[str, Any]:
    customer = customers.get_customer(session, viewer, customer_id)
    sensitive = {f.key for f in custom_fields.definitions(session) if f.sensitive}
    kept = {k: v for k, v in values.items() if k not in sensitive or v not in (None, "")}
    custom_fields.set_values(session, viewer, customer.id, kept)
    return customer_card(session, viewer, customer_id)


def qualification_choices() -> dict[str, dict[str, str]]:
    return qualification.CODE_FIELDS


def tag_choices(session: Session) -> list[dict[str, Any]]:
    return [{"id": t.id, "name": t.name} for t in tags.live_tags(session)]


def write_followup(session: Session, viewer: Viewer, customer_id: int, content: str,
                   kind: str = "wechat") -> dict[str, Any]:
    followups.log_followup(session, viewer, customer_id, kind=kind or "wechat", content=content)
    return customer_card(session, viewer, customer_id)


def parse_local_time(value: str, field: str = "due_at") -> datetime:
    """``YYYY-MM-DDTHH:MM`` as typed in a datetime-local input, in business time (Asia/Shanghai)."""
    try:
        local = datetime.fromisoformat((value or "").strip())
    except ValueError as exc:
        raise ValidationFailed("提醒时间格式不正确", field=field) from exc
    if local.tzinfo is None:
        local = local.replace(tzinfo=clock.BUSINESS_TZ)
    return local


def set_reminder(session: Session, viewer: Viewer, customer_id: int, title: str, due_at: str) -> dict[str, Any]:
    due = parse_local_time(due_at)
    if due <= clock.now():
        raise ValidationFailed("提醒时间须晚于现在", field="due_at")
    customers.get_customer(session, viewer, customer_id)
    task = followups.create_task(session, viewer, title=title, customer_id=customer_id, due_at=due)
    return {"id": task.id, "title": task.title, "due_at": _when(task.due_at)}


def product_choices(session: Session) -> list[dict[str, Any]]:
    out = []
    for product, version in products.list_products(session, active_only=True):
        if version is None:
            continue
        out.append({"id": product.id, "name": product.name, "min_amount": format_yuan(version.min_amount),
                    "max_amount": format_yuan(version.max_amount), "terms": list(version.terms_months),
                    "annual_rate": f"{Decimal(version.annual_rate) * 100:.2f}%"})
    return out


def product_page(session: Session, product_id: int) -> dict[str, Any]:
    """What the public product page shows (an active product's current terms; no customer data)."""
    product = products.get_product(session, product_id)
    version = products.current_version(session, product_id)
    return {"name": product.name, "min_amount": format_yuan(version.min_amount),
            "max_amount": format_yuan(version.max_amount), "terms": list(version.terms_months),
            "annual_rate": f"{Decimal(version.annual_rate) * 100:.2f}%"}


def parse_amount_fen(value: str) -> int:
    try:
        yuan = Decimal((value or "").strip())
    except ArithmeticError as exc:
        raise ValidationFailed("申请金额格式不正确", field="amount") from exc
    fen = yuan * 100
    if fen <= 0 or fen != fen.to_integral_value():
        raise ValidationFailed("申请金额须为正数，最多精确到分", field="amount")
    return int(fen)


def start_application(session: Session, viewer: Viewer, customer_id: int, product_id: int, amount: str,
                      term_months: int, idempotency_key: str | None = None) -> dict[str, Any]:
    customers.get_customer(session, viewer, customer_id)
    version = products.current_version(session, product_id)
    app = applications.start_application(session, customer_id, version.id, parse_amount_fen(amount), term_months,
                                         viewer=viewer, channel="wecom", idempotency_key=idempotency_key)
    return {"id": app.id, "card": customer_card(session, viewer, customer_id)}


def share_message(session: Session, viewer: Viewer, customer_id: int, kind: str, product_id: int,
                  base_url: str) -> dict[str, Any]:
    """The ``sendChatMessage`` parameters for a product card ("news") or the mini-program apply page."""
    customers.get_customer(session, viewer, customer_id)
    product = products.get_product(session, product_id)
    version = products.current_version(session, product_id)
    desc = (f"额度 {format_yuan(version.min_amount)}–{format_yuan(version.max_amount)}，"
            f"期限 {'/'.join(str(t) for t in version.terms_months)} 个月")
    if kind == "news":
        return {"msgtype": "news", "enterChat": False,
                "news": {"link": f"{base_url.rstrip('/')}{PRODUCT_PAGE}{product.id}", "title": product.name,
                         "desc": desc, "imgUrl": ""}}
    if kind == "miniprogram":
        page = f"{MP_APPLY_PAGE}?product={product.id}&staff={viewer.staff_id}"
        appid = get_settings().wechat_mp_appid or SIMULATOR_MP_APPID
        return {"msgtype": "miniprogram", "enterChat": False,
                "miniprogram": {"appid": appid, "title": f"在线申请：{product.name}", "imgUrl": "",
                                "page": quote(page, safe="/?=&")}}
    raise ValidationFailed("未知的消息类型", field="kind")
