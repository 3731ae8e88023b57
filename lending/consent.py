"""Consent under PIPL (个人信息保护法): versioned documents and explicit, withdrawable consent records.

Documents: ``privacy`` (隐私政策) and, per funder, ``share:<funder id>`` (个人信息共享授权书 naming the
funder the application's data goes to). Publishing a document adds version N+1; a customer must have
agreed to the latest version. Consent records are append-only (grant / withdraw, with time, IP and
user agent); the latest record per (customer, document) decides. Submitting an application needs the
privacy policy and the share authorisation of the product's funder; a withdrawal is honoured (no
submission afterwards) until the customer consents again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.audit import Actor
from crm import customers
from lending.consent_exceptions import (
    ConsentDocumentNotFound,
    ConsentMissing,
    ConsentRefused,
    ConsentVersionTaken,
)
from lending.models import Funder
from lending.models.consent import (
    CONSENT_KIND_LABELS,
    ConsentAction,
    ConsentKind,
    MpConsent,
    MpConsentDocument,
)

PRIVACY_CODE = "privacy"


def share_code(funder_id: int) -> str:
    return f"share:{funder_id}"


def required_codes(funder_id: int) -> list[str]:
    return [PRIVACY_CODE, share_code(funder_id)]


@dataclass(frozen=True)
class DocumentDraft:
    """A document as typed by staff, checked, not yet published: what the preview shows."""

    kind: str
    code: str
    funder_id: int | None
    title: str
    body: str
    version: int  # the version it will get when published


def check_draft(session: Session, kind: str, title: str, body: str, *,
                funder_id: int | None = None) -> DocumentDraft:
    """Check a document before publishing (the console's preview runs the same checks)."""
    try:
        kind = ConsentKind(kind)
    except ValueError as exc:
        raise ConsentRefused(f"未知的协议类型：{kind}", field="kind") from exc
    title, body = (title or "").strip(), (body or "").strip()
    if not title or len(title) > 120:
        raise ConsentRefused("协议标题不能为空，且不超过 120 字", field="title")
    if not body or len(body) > 20000:
        raise ConsentRefused("协议正文不能为空，且不超过 20000 字", field="body")
    if kind == ConsentKind.SHARE:
        if funder_id is None or session.get(Funder, funder_id) is None:
            raise ConsentRefused("共享授权书必须指定资方", field="funder_id")
        code = share_code(funder_id)
    else:
        funder_id, code = None, PRIVACY_CODE
    latest = session.scalar(select(func.max(MpConsentDocument.version)).where(MpConsentDocument.code == code)) or 0
    return DocumentDraft(kind, code, funder_id, title, body, latest + 1)


def publish(session: Session, kind: str, title: str, body: str, *, funder_id: int | None = None,
            actor: Actor | None = None) -> MpConsentDocument:
    """Publish a new version of a document (the first version is 1). Customers who agreed to an earlier
    version must agree again before their next submission; their earlier consent stays recorded."""
    draft = check_draft(session, kind, title, body, funder_id=funder_id)
    doc = MpConsentDocument(code=draft.code, kind=draft.kind, version=draft.version, funder_id=draft.funder_id,
                            title=draft.title, body=draft.body,
                            content_sha256=hashlib.sha256(draft.body.encode()).hexdigest(), published_at=clock.now())
    try:
        with session.begin_nested():  # a second publisher of the same version meets the unique (code, version)
            session.add(doc)
            session.flush()
    except IntegrityError as exc:
        raise ConsentVersionTaken() from exc
    audit.record(session, "mp.consent_document_published", entity_type="mp_consent_document", entity_id=doc.id,
                 after={"code": draft.code, "version": doc.version, "title": draft.title}, actor=actor)
    return doc


def document_label(code: str, funders: dict[int, str] | None = None) -> str:
    """The document's name for people: 隐私政策, or 个人信息共享授权书（资方名）."""
    if code.startswith("share:"):
        name = (funders or {}).get(int(code.split(":", 1)[1]))
        return CONSENT_KIND_LABELS["share"] + (f"（{name}）" if name else "")
    return CONSENT_KIND_LABELS["privacy"]


def versions(session: Session, code: str) -> list[MpConsentDocument]:
    """Every version of one document, newest first."""
    return list(session.scalars(select(MpConsentDocument).where(MpConsentDocument.code == code)
                                .order_by(MpConsentDocument.version.desc())))


def agreed_counts(session: Session) -> dict[int, int]:
    """Per document version: how many customers' latest record on that document is a grant of it."""
    latest = (select(func.max(MpConsent.id).label("id")).group_by(MpConsent.customer_id, MpConsent.code)
              .subquery())
    rows = session.execute(select(MpConsent.document_id, func.count()).join(latest, latest.c.id == MpConsent.id)
                           .where(MpConsent.action == ConsentAction.GRANT).group_by(MpConsent.document_id))
    return {doc_id: count for doc_id, count in rows}


@dataclass(frozen=True)
class ConsentRow:
    record: MpConsent
    customer_name: str
    current: bool  # the customer's latest record on this document


def records(session: Session, code: str, *, limit: int = 50, offset: int = 0) -> list[ConsentRow]:
    """Who consented to (or withdrew from) a document, newest first: customer, version, action, when, where.
    Every record stays: a customer who agreed to version 1 and then to version 2 shows twice."""
    from crm.models import Customer

    rows = session.execute(select(MpConsent, Customer.name).join(Customer, Customer.id == MpConsent.customer_id)
                           .where(MpConsent.code == code).order_by(MpConsent.id.desc()).limit(limit).offset(offset)).all()
    customer_ids = {r.customer_id for r, _ in rows}
    latest_ids = set(session.scalars(select(func.max(MpConsent.id)).where(
        MpConsent.code == code, MpConsent.customer_id.in_(customer_ids)).group_by(MpConsent.customer_id))) \
        if customer_ids else set()
    return [ConsentRow(r, name or f"客户#{r.customer_id}", r.id in latest_ids) for r, name in rows]


def latest_document(session: Session, code: str) -> MpConsentDocument | None:
    return session.scalar(select(MpConsentDocument).where(MpConsentDocument.code == code)
                          .order_by(MpConsentDocument.version.desc()).limit(1))


def current_documents(session: Session) -> list[MpConsentDocument]:
    """The latest version of every document."""
    latest = (select(MpConsentDocument.code, func.max(MpConsentDocument.version).label("v"))
              .group_by(MpConsentDocument.code).subquery())
    return list(session.scalars(select(MpConsentDocument).join(
        latest, (MpConsentDocument.code == latest.c.code) & (MpConsentDocument.version == latest.c.v))
        .order_by(MpConsentDocument.code)))


def get_document(session: Session, document_id: int) -> MpConsentDocument:
    doc = session.get(MpConsentDocument, document_id)
    if doc is None:
        raise ConsentDocumentNotFound()
    return doc


def _latest_record(session: Session, customer_id: int, code: str) -> MpConsent | None:
    return session.scalar(select(MpConsent).where(MpConsent.customer_id == customer_id, MpConsent.code == code)
                          .order_by(MpConsent.id.desc()).limit(1))


def _record(session: Session, customer_id: int, doc: MpConsentDocument, action: str, ip: str | None,
            user_agent: str | None) -> MpConsent:
    row = MpConsent(customer_id=customer_id, document_id=doc.id, code=doc.code, version=doc.version, action=action,
                    at=clock.now(), ip=(ip or None) and ip[:64], user_agent=(user_agent or None) and user_agent[:200])
    session.add(row)
    session.flush()
    verb = "同意" if action == ConsentAction.GRANT else "撤回"
    customers.record_event(session, customer_id, "consent", f"{verb}《{doc.title}》第 {doc.version} 版",
                           ref_type="mp_consent", ref_id=row.id)
    audit.record(session, f"mp.consent_{action}", entity_type="customer", entity_id=customer_id,
                 after={"code": doc.code, "version": doc.version, "document_id": doc.id},
                 actor=Actor("customer", customer_id, f"小程序客户#{customer_id}", ip))
    return row


def grant(session: Session, customer_id: int, document_id: int, *, ip: str | None = None,
          user_agent: str | None = None) -> MpConsent:
    """The customer agrees to this version (it must be the latest of its document)."""
    customers.get_customer(session, None, customer_id, for_update=True)  # serialise the customer's consents
    doc = get_document(session, document_id)
    latest = latest_document(session, doc.code)
    if latest is not None and latest.id != doc.id:
        raise ConsentRefused(f"《{doc.title}》已更新，请阅读并同意最新版本", field="document_id")
    current = _latest_record(session, customer_id, doc.code)
    if current is not None and current.action == ConsentAction.GRANT and current.document_id == doc.id:
        return current
    return _record(session, customer_id, doc, ConsentAction.GRANT, ip, user_agent)


def withdraw(session: Session, customer_id: int, document_id: int, *, ip: str | None = None,
             user_agent: str | None = None) -> MpConsent:
    """Withdraw consent to a document (any version the customer agreed to)."""
    customers.get_customer(session, None, customer_id, for_update=True)
    doc = get_document(session, document_id)
    current = _latest_record(session, customer_id, doc.code)
    if current is None or current.action != ConsentAction.GRANT:
        raise ConsentRefused(f"您尚未同意《{doc.title}》，无需撤回", field="document_id")
    return _record(session, customer_id, session.get(MpConsentDocument, current.document_id) or doc,
                   ConsentAction.WITHDRAW, ip, user_agent)


@dataclass(frozen=True)
class ConsentState:
    document: MpConsentDocument
    agreed_version: int | None  # the version agreed to, if the latest record is a grant
    withdrawn: bool

    @property
    def valid(self) -> bool:
        return self.agreed_version == self.document.version


def states(session: Session, customer_id: int) -> list[ConsentState]:
    out = []
    for doc in current_documents(session):
        rec = _latest_record(session, customer_id, doc.code)
        granted = rec is not None and rec.action == ConsentAction.GRANT
        out.append(ConsentState(doc, rec.version if granted and rec else None,
                                rec is not None and rec.action == ConsentAction.WITHDRAW))
    return out


def ensure_consented(session: Session, customer_id: int, codes: list[str]) -> None:
    """Refuse (ConsentMissing, listing what is missing) unless the latest version of each is agreed."""
    missing = []
    for code in codes:
        doc = latest_document(session, code)
        if doc is None:
            label = CONSENT_KIND_LABELS["share"] if code.startswith("share:") else CONSENT_KIND_LABELS["privacy"]
            raise ConsentMissing(f"{label}尚未发布，暂不能提交申请，请联系客服", code="mp_consent_document_missing")
        rec = _latest_record(session, customer_id, code)
        if rec is None or rec.action != ConsentAction.GRANT or rec.version != doc.version:
            missing.append(doc)
    if missing:
        raise ConsentMissing("请先阅读并同意：" + "、".join(f"《{d.title}》" for d in missing),
                             document_ids=[d.id for d in missing])
