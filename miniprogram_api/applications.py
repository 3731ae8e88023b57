"""Applications (进件) from the mini-program: drafts, profile, submission into the lending workflow, status.

- A draft holds the product, amount (fen) and term, and the profile (monthly income in fen, occupation,
  employer, purpose). Name and ID number go onto the CRM customer through ``crm.customers.intake``
  (sealed there, masked everywhere); they never sit in the draft.
- Submission needs a complete draft (product, amount and term within the product, name, ID number,
  income, occupation, both ID photos), the consents (privacy policy and the funder's share
  authorisation, latest versions, not withdrawn), and an idempotency key: a double tap with the same
  key answers the same submission (the key is unique per customer; the draft row is locked).
- The lending workflow is entered through ``lending.applications.start_application`` (channel
  ``miniprogram``, idempotency key ``mp:<customer>:<key>``); the profile becomes the application's fields
  (purpose, employer, monthly income) and both ID photos mark 身份证 as received.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, clock, pii
from core.audit import Actor
from core.money import fen_to_yuan
from crm import customers
from crm.models import Customer
from lending import application_files, consent, products
from lending import applications as lending_applications
from lending.models import APPLICATION_STATUS_LABELS, Application, ApplicationTransition, WorkflowNode
from miniprogram_api import uploads
from miniprogram_api.errors import MpErrorCode
from miniprogram_api.exceptions import (
    ApplicationIncomplete,
    DraftNotFound,
    DraftSubmitted,
    MpValidation,
    PhoneBindingRefused,
)
from miniprogram_api.models import DRAFT_STATUS_LABELS, DraftStatus, MpApplicationDraft, MpDocument

PROFILE_FIELDS = ("income_amount", "occupation", "employer", "purpose")
MAX_INCOME = 100_000_000  # fen per month: 100 万元 a month is already a typo
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]{8,64}$")
REQUIRED_PHOTOS = ("id_front", "id_back")
PROOF_OF = {"id_front": "身份证", "id_back": "身份证", "income": "收入证明"}  # the document each photo proves


@dataclass
class DraftInput:
    """What the customer filled in; None leaves a value unchanged."""

    product_id: int | None = None
    amount: int | None = None  # fen
    term_months: int | None = None
    name: str | None = None
    id_number: str | None = None
    income_amount: int | None = None  # fen per month
    occupation: str | None = None
    employer: str | None = None
    purpose: str | None = None


def get_draft(session: Session, customer_id: int, draft_id: int, *, for_update: bool = False) -> MpApplicationDraft:
    stmt = select(MpApplicationDraft).where(MpApplicationDraft.id == draft_id)
    if for_update:
        stmt = stmt.with_for_update()
    draft = session.scalar(stmt)
    if draft is None or draft.customer_id != customer_id:
        raise DraftNotFound()
    return draft


def list_drafts(session: Session, customer_id: int) -> list[MpApplicationDraft]:
    return list(session.scalars(select(MpApplicationDraft).where(MpApplicationDraft.customer_id == customer_id)
                                .order_by(MpApplicationDraft.id.desc())))


def create_draft(session: Session, customer_id: int, data: DraftInput, *, actor: Actor | None = None) -> MpApplicationDraft:
    now = clock.now()
    draft = MpApplicationDraft(customer_id=customer_id, status=DraftStatus.DRAFT, profile={}, created_at=now,
                               updated_at=now)
    _apply(session, draft, data)
    session.add(draft)
    session.flush()
    audit.record(session, "mp.draft_created", entity_type="mp_application_draft", entity_id=draft.id, actor=actor)
    return draft


def update_draft(session: Session, customer_id: int, draft_id: int, data: DraftInput) -> MpApplicationDraft:
    draft = get_draft(session, customer_id, draft_id, for_update=True)
    if draft.status != DraftStatus.DRAFT:
        raise DraftSubmitted()
    _apply(session, draft, data)
    draft.updated_at = clock.now()
    session.flush()
    return draft


def _text(value: str | None, label: str, field: str, limit: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise MpValidation(f"{label}不能超过 {limit} 个字", field=field)
    return value or None


def _apply(session: Session, draft: MpApplicationDraft, data: DraftInput) -> None:
    """Validate everything first, then write: a refused field leaves the draft and the customer untouched."""
    product = None
    if data.product_id is not None:
        product = products.get_product(session, data.product_id)
        if not (product.active and product.funder.active):
            raise MpValidation(f"产品已停用：{product.name}", field="product_id")
    amount = draft.requested_amount if data.amount is None else data.amount
    term = draft.term_months if data.term_months is None else data.term_months
    if amount is not None and amount <= 0:
        raise MpValidation("申请金额必须大于 0", field="amount")
    if term is not None and not 1 <= term <= 360:
        raise MpValidation("期限必须在 1–360 个月之间", field="term_months")
    product_id = data.product_id if data.product_id is not None else draft.product_id
    if product_id is not None and amount is not None and term is not None:
        products.check_amount_and_term(products.current_version(session, product_id), amount, term)
    if data.income_amount is not None and not 0 <= data.income_amount <= MAX_INCOME:
        raise MpValidation("月收入超出范围（0–100 万元）", field="income_amount")
    occupation = _text(data.occupation, "职业", "occupation", 40)
    employer = _text(data.employer, "工作单位", "employer", 80)
    purpose = _text(data.purpose, "贷款用途", "purpose", 120)
    name = _text(data.name, "姓名", "name", 32)
    if data.id_number or name:
        _set_identity(session, draft.customer_id, name, data.id_number)
    draft.product_id = product_id if product is None else product.id
    draft.requested_amount, draft.term_months = amount, term
    profile = dict(draft.profile or {})
    for key, value in (("income_amount", data.income_amount), ("occupation", occupation), ("employer", employer),
                       ("purpose", purpose)):
        if value is not None:
            profile[key] = value
    draft.profile = profile


def _set_identity(session: Session, customer_id: int, name: str | None, id_number: str | None) -> None:
    """Name and ID number onto the CRM customer (sealed there). Values already on the record must match;
    an ID number belonging to another customer is refused."""
    me = customers.get_customer(session, None, customer_id, for_update=True)
    if name and me.name and me.name != name:
        raise MpValidation("姓名与已登记的不一致，如需更正请联系客服", field="name")
    if id_number:
        sealed = pii.protect(pii.ID_NUMBER, id_number)
        if me.id_number_index and me.id_number_index != sealed.index:
            raise MpValidation(f"身份证号与已登记的 {me.id_number_masked} 不一致，如需更正请联系客服",
                               field="id_number")
        clash = session.scalar(select(Customer.id).where(Customer.id_number_index == sealed.index,
                                                         Customer.id != me.id))
        if clash is not None:
            raise PhoneBindingRefused("该身份证号已登记在另一位客户名下，请联系客服", code=MpErrorCode.ID_NUMBER_TAKEN)
    fill_name = name if name and not me.name else ""
    fill_id = id_number if id_number and not me.id_number_index else None
    if fill_name or fill_id:
        customers.intake(session, customers.CustomerInput(name=fill_name, id_number=fill_id,
                                                          wechat_openid=me.wechat_openid, source="miniprogram"),
                         channel="miniprogram")


# --- submission ------------------------------------------------------------------------------------

def missing_items(session: Session, draft: MpApplicationDraft) -> list[str]:
    customer = customers.get_customer(session, None, draft.customer_id)
    profile = draft.profile or {}
    missing = []
    for ok, label in ((draft.product_id, "产品"), (draft.requested_amount, "申请金额"), (draft.term_months, "期限"),
                      (customer.name, "姓名"), (customer.id_number_index, "身份证号"),
                      (profile.get("income_amount") is not None, "月收入"), (profile.get("occupation"), "职业"),
                      (customer.phone_index, "手机号（请先授权绑定）")):
        if not ok:
            missing.append(label)
    kinds = set(session.scalars(select(MpDocument.kind).where(
        MpDocument.draft_id == draft.id, MpDocument.deleted_at.is_(None))))
    missing += [uploads.KINDS[k] for k in REQUIRED_PHOTOS if k not in kinds]
    return missing


def submit(session: Session, customer_id: int, draft_id: int, idempotency_key: str, *,
           actor: Actor | None = None) -> MpApplicationDraft:
    key = (idempotency_key or "").strip()
    if not _KEY_RE.match(key):
        raise MpValidation("请求标识（idempotency_key）必须是 8–64 位字母、数字、- 或 _", field="idempotency_key")
    draft = get_draft(session, customer_id, draft_id, for_update=True)
    if draft.status != DraftStatus.DRAFT:
        if draft.submit_key == key:
            return draft  # the same tap again: the same answer
        raise DraftSubmitted()
    earlier = session.scalar(select(MpApplicationDraft).where(MpApplicationDraft.customer_id == customer_id,
                                                              MpApplicationDraft.submit_key == key))
    if earlier is not None:
        raise MpValidation("该请求标识已用于另一份申请", field="idempotency_key")
    missing = missing_items(session, draft)
    if missing:
        raise ApplicationIncomplete("申请资料不完整，请补充：" + "、".join(missing), missing=missing)
    customer = customers.get_customer(session, None, customer_id)
    customers.ensure_not_blacklisted(customer)
    version = products.current_version(session, draft.product_id)
    products.check_amount_and_term(version, draft.requested_amount, draft.term_months)
    product = products.get_product(session, draft.product_id)
    consent.ensure_consented(session, customer_id, consent.required_codes(product.funder_id))
    application = lending_applications.start_application(session, customer_id, version.id, draft.requested_amount, draft.term_months, viewer=None,
                        channel="miniprogram", idempotency_key=f"mp:{customer_id}:{key}")
    _hand_over(session, application.id, draft)
    now = clock.now()
    draft.status, draft.submit_key, draft.submitted_at, draft.updated_at = DraftStatus.SUBMITTED, key, now, now
    draft.product_version_id, draft.application_id = version.id, application.id
    session.flush()
    audit.record(session, "mp.application_submitted", entity_type="mp_application_draft", entity_id=draft.id,
                 after={"application_id": application.id, "amount": draft.requested_amount,
                        "term_months": draft.term_months, "product_version_id": version.id}, actor=actor)
    customers.record_event(session, customer_id, "application", "客户在小程序提交了贷款申请",
                           ref_type="application", ref_id=application.id)
    return draft


def _hand_over(session: Session, application_id: int, draft: MpApplicationDraft) -> None:
    """What the customer filled in becomes the application's fields, and both ID photos mark the ID card
    as received (the note names the uploads; staff still check them at review)."""
    profile = draft.profile or {}
    fields = {"purpose": profile.get("purpose"), "employer": profile.get("employer"),
              "monthly_income": str(fen_to_yuan(profile["income_amount"]))
              if profile.get("income_amount") is not None else None}
    fields = {k: v for k, v in fields.items() if v}
    if fields:
        lending_applications.set_fields(session, application_id, fields, viewer=None)
    uploaded = list(session.scalars(select(MpDocument).where(
        MpDocument.draft_id == draft.id, MpDocument.deleted_at.is_(None)).order_by(MpDocument.id)))
    for d in uploaded:  # the reviewers open them on the application (the same encrypted files)
        label = uploads.KINDS.get(d.kind, d.kind)
        application_files.carry_over(session, application_id, PROOF_OF.get(d.kind, label),
                                     file_name=f"小程序-{label}{'.png' if d.content_type == 'image/png' else '.jpg'}",
                                     content_type=d.content_type, size_bytes=d.size_bytes, sha256=d.sha256,
                                     storage_name=d.storage_name)
    photos = {d.kind: d.id for d in uploaded}
    if all(k in photos for k in REQUIRED_PHOTOS):
        lending_applications.add_document(session, application_id, "身份证", viewer=None,
                                  note=f"小程序上传：人像面 #{photos['id_front']}，国徽面 #{photos['id_back']}")


# --- status ---------------------------------------------------------------------------------------

def status(session: Session, draft: MpApplicationDraft) -> dict[str, Any]:
    """Where the application stands, with the workflow's node names when the lending workflow has it."""
    out: dict[str, Any] = {"status": draft.status, "status_label": DRAFT_STATUS_LABELS.get(draft.status, draft.status),
                           "node": None, "history": []}
    if draft.application_id is None:
        return out
    app = session.get(Application, draft.application_id)
    if app is None:
        return out
    labels = APPLICATION_STATUS_LABELS
    out["status"], out["status_label"] = app.status, labels.get(app.status, app.status)
    if app.current_node_id is not None:
        node = session.get(WorkflowNode, app.current_node_id)
        out["node"] = node.name if node is not None else None
    names = dict(session.execute(select(WorkflowNode.id, WorkflowNode.name).where(
        WorkflowNode.definition_id == app.definition_id)).all())
    rows = session.scalars(select(ApplicationTransition).where(ApplicationTransition.application_id == app.id)
                           .order_by(ApplicationTransition.at, ApplicationTransition.id))
    out["history"] = [{"at": r.at, "status": r.to_status, "status_label": labels.get(r.to_status, r.to_status),
                       "node": names.get(r.to_node_id)} for r in rows]
    return out
