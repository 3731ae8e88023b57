"""Loan applications (进件): the CRM hand-off, the moves through the workflow, the node checklist and
the pipeline board.

THE entry point for every channel — console, WeCom chat command, mini-program::

    start_application(session, customer_id, product_version_id, amount_fen, term_months,
                      viewer=None, channel="console" | "wecom" | "miniprogram", idempotency_key=None)

It refuses a blacklisted customer, an amount or term outside the product version (with the reason),
a product that is inactive or no longer at that version, and a second open application of the same
customer for the same product (the partial unique index decides under concurrency). The customer's
CRM stage follows the application (applied → approved → signed → disbursed → repaying; lost when it
is rejected or withdrawn and nothing else is open) and every move lands on the customer's timeline.

Reads are data-scoped through the customer (crm.customers.can_view / visible_clause): a salesperson
sees the applications of their own customers; out of scope is "not found".

Downstream packages (referral: the first-application bounty) learn of a new application through the
in-process hook list :data:`ON_APPLICATION_STARTED` (``fn(session, application_id)``), called inside
start_application's unit of work once per application created (never for an idempotent repeat).
The contract module drafts the contract through :data:`ON_SIGNING_ENTERED` the same way, so that this
module never imports the modules that build on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.errors import PermissionDenied, ValidationFailed
from core.money import format_yuan
from crm import customers
from crm.models import Customer, Role
from crm.scope import Viewer
from lending import approval, products
from lending.application_exceptions import (
    ApplicationAlreadyOpen,
    ApplicationClosed,
    ApplicationNotFound,
    RequirementsMissing,
    StaleNode,
    TransitionRefused,
)
from lending.models import (
    OPEN_STATUSES,
    Application,
    ApplicationDocument,
    ApplicationNodeVisit,
    ApplicationStatus,
    ApplicationTransition,
    NodeKind,
    Product,
    ProductVersion,
    WorkflowNode,
)
from lending.product_exceptions import ProductInactive
from lending.risk_bridge import evaluate as risk_evaluate
from lending.risk_bridge import recent_applications
from lending.workflow import definitions, engine
from lending.workflow.machine import ApplicationMachine, Event

__all__ = [
    "CHANNELS", "ON_APPLICATION_STARTED", "Board", "ChecklistItem", "approve", "add_document", "board_query", "checklist",
    "get_application", "pipeline", "recent_applications", "reject", "set_fields", "start_application",
    "transitions", "visible_clause", "visits", "withdraw",
]

CHANNELS = ("console", "wecom", "miniprogram")
CHANNEL_LABELS = {"console": "控制台", "wecom": "企业微信", "miniprogram": "小程序"}
DECIDERS = frozenset({Role.ADMIN, Role.MANAGER})

# In-process hooks called by start_application inside its unit of work, right after a new application
# is created (not for an idempotent repeat, nor for a refused one). Signature: fn(session, application_id).
# A hook that raises rolls the application back with it.
ON_APPLICATION_STARTED: list[Callable[[Session, int], None]] = []

# Called when an application enters a signing node, inside the same unit of work: fn(session, application).
# lending.contracts registers the contract draft on import (lending.tasks imports it in every process).
ON_SIGNING_ENTERED: list[Callable[[Session, Application], Any]] = []


# --- reads and scope ----------------------------------------------------------------------------------


def visible_clause(viewer: Viewer):  # noqa: ANN201 - a SQL clause over Application joined to Customer
    """Applications a viewer may see: those of customers the viewer may see (join Customer first)."""
    return customers.visible_clause(viewer)


def get_application(session: Session, viewer: Viewer | None, application_id: int, *,
                    for_update: bool = False) -> Application:
    stmt = select(Application).where(Application.id == application_id)
    if for_update:
        stmt = stmt.with_for_update()
    app = session.scalar(stmt)
    if app is None:
        raise ApplicationNotFound()
    if viewer is not None:
        customer = session.get(Customer, app.customer_id)
        if customer is None or not customers.can_view(session, viewer, customer):
            raise ApplicationNotFound()
    return app


def transitions(session: Session, application_id: int) -> list[ApplicationTransition]:
    return list(session.scalars(select(ApplicationTransition).where(
        ApplicationTransition.application_id == application_id).order_by(ApplicationTransition.id)))


def visits(session: Session, application_id: int) -> list[tuple[ApplicationNodeVisit, WorkflowNode]]:
    return [(v, n) for v, n in session.execute(
        select(ApplicationNodeVisit, WorkflowNode).join(WorkflowNode, WorkflowNode.id == ApplicationNodeVisit.node_id)
        .where(ApplicationNodeVisit.application_id == application_id).order_by(ApplicationNodeVisit.id))]


def machine_for(session: Session, app: Application) -> ApplicationMachine:
    return ApplicationMachine(definitions.nodes_of(session, app.definition_id))


# --- the hand-off ---------------------------------------------------------------------------------------


def _check_amount(amount_fen: Any, term_months: Any) -> tuple[int, int]:
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
        raise ValidationFailed("申请金额必须是正整数（分）", field="amount")
    if isinstance(term_months, bool) or not isinstance(term_months, int) or term_months <= 0:
        raise ValidationFailed("申请期限必须是正整数（月）", field="term_months")
    return amount_fen, term_months


def _existing_by_key(session: Session, key: str) -> Application | None:
    return session.scalar(select(Application).where(Application.idempotency_key == key))


def start_application(session: Session, customer_id: int, product_version_id: int, amount_fen: int,
                      term_months: int, *, viewer: Viewer | None = None, channel: str = "console",
                      idempotency_key: str | None = None) -> Application:
    """A qualified lead becomes an application at the first node of the active workflow.

    ``viewer`` (a staff member) limits the customer to their data scope; channels acting for the
    customer (mini-program) pass none. ``idempotency_key``: the same key returns the same application
    (a retried request creates nothing new). Only flushes; the caller commits.
    """
    if channel not in CHANNELS:
        raise ValidationFailed(f"未知的渠道：{channel}", field="channel")
    key = (idempotency_key or "").strip()[:80] or None
    if key is not None:
        existing = _existing_by_key(session, key)
        if existing is not None:
            if existing.customer_id != customer_id:
                raise ValidationFailed("幂等键已用于其他客户的申请", field="idempotency_key")
            return existing
    amount_fen, term_months = _check_amount(amount_fen, term_months)
    customer = customers.get_customer(session, viewer, customer_id, for_update=True)
    customers.ensure_not_blacklisted(customer)
    version = products.get_version(session, product_version_id)
    product = session.get(Product, version.product_id)
    assert product is not None
    if not (product.active and product.funder.active):
        raise ProductInactive(f"产品已停用：{product.name}")
    if product.current_version_id != version.id:
        raise ProductInactive(f"产品「{product.name}」的条款已更新，请按最新版本重新报价后申请", code="product_version_stale")
    quote = products.quote(version, amount_fen, term_months)  # the amount/term range and the APR cap, with reasons
    open_app = session.scalar(select(Application.id).where(
        Application.customer_id == customer.id, Application.product_id == product.id,
        Application.status.in_(OPEN_STATUSES)))
    if open_app is not None:
        raise ApplicationAlreadyOpen(f"该客户在「{product.name}」下已有进行中的申请 #{open_app}",
                                     application_id=open_app)
    definition = definitions.ensure_active(session)
    now = clock.now()
    app = Application(customer_id=customer.id, product_id=product.id, product_version_id=version.id,
                      definition_id=definition.id, current_node_id=None, status=ApplicationStatus.INTAKE,
                      requested_amount=amount_fen, term_months=term_months, channel=channel, idempotency_key=key,
                      fields={}, created_by_staff_id=viewer.staff_id if viewer else None, created_at=now,
                      updated_at=now)
    try:
        with session.begin_nested():
            session.add(app)
            session.flush()
    except IntegrityError:
        if key is not None and (again := _existing_by_key(session, key)) is not None:
            return again
        raise ApplicationAlreadyOpen(f"该客户在「{product.name}」下已有进行中的申请") from None
    move = machine_for(session, app).start()
    assert move.to_node is not None
    app.current_node_id, app.status = move.to_node.id, move.to_status
    session.flush()
    engine.apply_move(session, app, move, viewer=viewer,
                      actor_label=None if viewer else CHANNEL_LABELS[channel],
                      comment=f"{product.name} {format_yuan(quote.amount)} / {term_months} 个月"
                              f"（{CHANNEL_LABELS[channel]}，综合年化 {quote.apr_percent}%）")
    _after_enter(session, app, move.to_node, viewer)
    for hook in list(ON_APPLICATION_STARTED):
        hook(session, app.id)
    return app


# --- moves ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChecklistItem:
    kind: str  # field | document
    key: str
    label: str
    present: bool


def checklist(session: Session, app: Application, node: WorkflowNode | None = None) -> list[ChecklistItem]:
    """The current node's required fields and documents, and whether each is present."""
    node = node or (session.get(WorkflowNode, app.current_node_id) if app.current_node_id else None)
    if node is None:
        return []
    have_docs = set(session.scalars(select(ApplicationDocument.kind).where(
        ApplicationDocument.application_id == app.id)))
    fields_ = app.fields or {}
    items = [ChecklistItem("field", f, definitions.FIELDS.get(f, f), bool(str(fields_.get(f) or "").strip()))
             for f in node.required_fields or []]
    items += [ChecklistItem("document", d, d, d in have_docs) for d in node.required_documents or []]
    return items


def _ensure_may_act(session: Session, viewer: Viewer | None, app: Application, event: Event) -> None:
    """Managers and admins decide anywhere; otherwise the node's person, or its role's queue (a sales
    node without a named person: any salesperson who sees the customer). Anyone in scope may withdraw."""
    if viewer is None or viewer.role in DECIDERS or event is Event.WITHDRAW:
        return
    visit = engine.open_visit(session, app.id)
    if visit is None:
        return
    if visit.responsible_staff_id is not None:
        if visit.responsible_staff_id == viewer.staff_id:
            return
    elif visit.responsible_role is None or visit.responsible_role == viewer.role:
        return
    raise PermissionDenied("您不是本节点的负责人，不能执行此操作")


def may_act(session: Session, viewer: Viewer, app: Application) -> bool:
    """Whether the viewer may decide the current node (approve or reject); the page shows buttons by this."""
    try:
        _ensure_may_act(session, viewer, app, Event.APPROVE)
    except PermissionDenied:
        return False
    return True


def _fire(session: Session, application_id: int, event: Event, *, viewer: Viewer | None, comment: str | None,
          expected_node_id: int | None = None, target_code: str | None = None, system: bool = False,
          override_reason: str | None = None) -> Application:
    app = get_application(session, viewer, application_id, for_update=True)
    if expected_node_id is not None and app.current_node_id != expected_node_id:
        raise StaleNode()
    machine = machine_for(session, app)
    move = machine.fire(app.status, app.current_node_id, event, reason=comment, target_code=target_code,
                        amount_fen=app.requested_amount, product_id=app.product_id)
    if not system:
        _ensure_may_act(session, viewer, app, event)
    if event is Event.APPROVE and not system:
        assert move.from_node is not None
        if move.from_node.kind == NodeKind.SIGNING:
            raise TransitionRefused("签约节点请通过「签署合同」完成")
        if move.from_node.kind == NodeKind.DISBURSEMENT:
            raise TransitionRefused("放款节点请通过「登记放款」完成")
        override_note = approval.check(session, viewer, app, move.from_node, override_reason)
        if override_note:
            comment = f"{override_note}；{comment}" if comment else override_note
    if event is Event.APPROVE:
        missing = [i.label for i in checklist(session, app, move.from_node) if not i.present]
        if missing:
            raise RequirementsMissing(f"「{move.from_node.name}」还缺少：{'、'.join(missing)}", missing=missing)
    engine.apply_move(session, app, move, viewer=viewer, comment=comment)
    if move.to_node is not None:
        _after_enter(session, app, move.to_node, viewer)
    return app


def approve(session: Session, application_id: int, *, viewer: Viewer | None, comment: str | None = None,
            expected_node_id: int | None = None, to_node_code: str | None = None,
            override_reason: str | None = None) -> Application:
    """Pass the current node (its required fields and documents present) to the next one — never further.

    Against a 拒绝 verdict or above the credit limit only with the override permission and a written
    ``override_reason``; never a second review node by the same person (lending.approval)."""
    return _fire(session, application_id, Event.APPROVE, viewer=viewer, comment=comment,
                 expected_node_id=expected_node_id, target_code=to_node_code, override_reason=override_reason)


def reject(session: Session, application_id: int, reason: str, *, viewer: Viewer | None,
           expected_node_id: int | None = None) -> Application:
    return _fire(session, application_id, Event.REJECT, viewer=viewer, comment=reason,
                 expected_node_id=expected_node_id)


def withdraw(session: Session, application_id: int, reason: str, *, viewer: Viewer | None,
             expected_node_id: int | None = None) -> Application:
    return _fire(session, application_id, Event.WITHDRAW, viewer=viewer, comment=reason,
                 expected_node_id=expected_node_id)


def complete_node(session: Session, app: Application, *, viewer: Viewer | None, comment: str) -> Application:
    """The signing and disbursement modules pass their node once the contract is signed / the money is out."""
    return _fire(session, app.id, Event.APPROVE, viewer=viewer, comment=comment,
                 system=True)


def _after_enter(session: Session, app: Application, node: WorkflowNode, viewer: Viewer | None) -> None:
    if node.kind == NodeKind.REVIEW:
        first_review = session.scalar(select(func.min(WorkflowNode.position)).where(
            WorkflowNode.definition_id == app.definition_id, WorkflowNode.kind == NodeKind.REVIEW))
        if node.position == first_review:
            evaluate_risk(session, app, viewer)
    elif node.kind == NodeKind.SIGNING:
        if not ON_SIGNING_ENTERED:
            raise RuntimeError("no contract module registered (import lending.contracts, as lending.tasks does)")
        for hook in ON_SIGNING_ENTERED:
            hook(session, app)


def evaluate_risk(session: Session, app: Application, viewer: Viewer | None) -> int | None:
    """Run the product's risk rules and keep the evaluation's id."""
    evaluation_id = risk_evaluate(session, app, viewer)
    if evaluation_id is not None:
        app.risk_evaluation_id = evaluation_id
        session.flush()
    return evaluation_id


# --- collected data ---------------------------------------------------------------------------------------


def _open_for_edit(session: Session, viewer: Viewer | None, application_id: int) -> Application:
    app = get_application(session, viewer, application_id, for_update=True)
    if app.status not in OPEN_STATUSES:
        raise ApplicationClosed()
    return app


def set_fields(session: Session, application_id: int, values: Mapping[str, Any], *,
               viewer: Viewer | None) -> Application:
    """Fill (or clear, with an empty value) application fields; unknown keys are refused."""
    app = _open_for_edit(session, viewer, application_id)
    unknown = [k for k in values if k not in definitions.FIELDS]
    if unknown:
        raise ValidationFailed(f"未知的字段：{'、'.join(unknown)}", field="fields")
    merged = dict(app.fields or {})
    for k, v in values.items():
        text = str(v if v is not None else "").strip()
        if len(text) > 200:
            raise ValidationFailed(f"{definitions.FIELDS[k]}不能超过 200 字", field=k)
        if text:
            merged[k] = text
        else:
            merged.pop(k, None)
    if merged != (app.fields or {}):
        app.fields = merged
        app.updated_at = clock.now()
        session.flush()
        audit.record(session, "lending.application.fields", entity_type="lending_application", entity_id=app.id,
                     after={"keys": sorted(values)})
    return app


def add_document(session: Session, application_id: int, kind: str, *, viewer: Viewer | None,
                 note: str | None = None) -> ApplicationDocument:
    """Record a required document as received (one row per kind; a second receipt keeps the first)."""
    app = _open_for_edit(session, viewer, application_id)
    kind = (kind or "").strip()
    if not kind or len(kind) > 40:
        raise ValidationFailed("请填写材料名称（最多 40 字）", field="kind")
    existing = session.scalar(select(ApplicationDocument).where(
        ApplicationDocument.application_id == app.id, ApplicationDocument.kind == kind))
    if existing is not None:
        return existing
    doc = ApplicationDocument(application_id=app.id, kind=kind, note=(note or "").strip()[:200] or None,
                              by_staff_id=viewer.staff_id if viewer else None, at=clock.now())
    session.add(doc)
    session.flush()
    audit.record(session, "lending.application.document", entity_type="lending_application", entity_id=app.id,
                 after={"kind": kind})
    return doc


def documents(session: Session, application_id: int) -> list[ApplicationDocument]:
    return list(session.scalars(select(ApplicationDocument).where(
        ApplicationDocument.application_id == application_id).order_by(ApplicationDocument.id)))


# --- the pipeline board -----------------------------------------------------------------------------------


@dataclass
class Card:
    application: Application
    customer_name: str
    owner_id: int | None
    product_name: str
    node_name: str
    entered_at: datetime
    sla_due_at: datetime | None
    dwell: timedelta
    breached: bool

    @property
    def dwell_label(self) -> str:
        return dwell_label(self.dwell)


@dataclass
class Column:
    code: str
    name: str
    cards: list[Card] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.cards)

    @property
    def breached(self) -> int:
        return sum(1 for c in self.cards if c.breached)


@dataclass
class Board:
    columns: list[Column]
    total: int
    truncated: bool


def dwell_label(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"已停留 {minutes} 分钟"
    hours = minutes // 60
    if hours < 48:
        return f"已停留 {hours} 小时"
    return f"已停留 {hours // 24} 天 {hours % 24} 小时"


def board_query(viewer: Viewer, *, product_id: int | None = None, owner_id: int | None = None,
                date_from: date | None = None, date_to: date | None = None, mine: bool = False) -> Select[Any]:
    """The board's SELECT (open applications, scoped and filtered, in the order they entered their node): the
    page and its export."""
    stmt = (
        select(Application, ApplicationNodeVisit, WorkflowNode, Customer.name, Customer.owner_id, Product.name)
        .join(Customer, Customer.id == Application.customer_id)
        .join(Product, Product.id == Application.product_id)
        .join(ApplicationNodeVisit, and_(ApplicationNodeVisit.application_id == Application.id,
                                         ApplicationNodeVisit.left_at.is_(None)))
        .join(WorkflowNode, WorkflowNode.id == Application.current_node_id)
        .where(Application.status.in_(OPEN_STATUSES), visible_clause(viewer))
    )
    if product_id:
        stmt = stmt.where(Application.product_id == product_id)
    if owner_id:
        stmt = stmt.where(Customer.owner_id == owner_id)
    if date_from:
        stmt = stmt.where(Application.created_at >= clock.start_of_business_day(date_from))
    if date_to:
        stmt = stmt.where(Application.created_at < clock.start_of_business_day(date_to + timedelta(days=1)))
    if mine:
        stmt = stmt.where(or_(ApplicationNodeVisit.responsible_staff_id == viewer.staff_id,
                              and_(ApplicationNodeVisit.responsible_staff_id.is_(None),
                                   ApplicationNodeVisit.responsible_role == viewer.role)))
    return stmt.order_by(ApplicationNodeVisit.entered_at)


def pipeline(session: Session, viewer: Viewer, *, product_id: int | None = None, owner_id: int | None = None,
             date_from: date | None = None, date_to: date | None = None, mine: bool = False,
             limit: int = 500) -> Board:
    """Open applications by node (the active workflow's columns; other versions' nodes by code)."""
    definition = definitions.ensure_active(session)
    columns = [Column(n.code, n.name) for n in definitions.nodes_of(session, definition.id)
               if n.kind != NodeKind.SERVICING]
    by_code = {c.code: c for c in columns}
    other = Column("_other", "其他版本节点")
    now = clock.now()
    rows = session.execute(board_query(viewer, product_id=product_id, owner_id=owner_id, date_from=date_from,
                                       date_to=date_to, mine=mine).limit(limit + 1)).all()
    for app, visit, node, customer_name, owner, product_name in rows[:limit]:
        card = Card(app, customer_name or f"客户#{app.customer_id}", owner, product_name, node.name,
                    visit.entered_at, visit.sla_due_at, now - visit.entered_at,
                    visit.sla_due_at is not None and now > visit.sla_due_at)
        by_code.get(node.code, other).cards.append(card)
    if other.cards:
        columns.append(other)
    return Board(columns, min(len(rows), limit), len(rows) > limit)


def product_version(session: Session, app: Application) -> ProductVersion:
    return products.get_version(session, app.product_version_id)
