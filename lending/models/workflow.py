"""The application workflow as data, and the applications that run through it.

- ``WorkflowDefinition`` — a numbered version of the workflow; exactly one is active (a partial unique
  index decides). Saving the designer creates version N+1; stored versions and their nodes never change.
  An application keeps the definition it started on.
- ``WorkflowNode`` — one step: code, Chinese name, position, kind (``intake`` / ``review`` / ``signing`` /
  ``disbursement`` / ``servicing``: what the system does there), the responsible role or person, the SLA in
  hours, and the fields and documents required before the step may be approved; its ``routes`` (流转条件:
  ``[{"to": code, "amount_op": "gt"|"ge"|"lt"|"le"|None, "amount_fen": int|None, "product_id": int|None}]``,
  the first that matches the application decides the next node, none matching: the next node in order) and
  its CC recipients (抄送: ``cc_roles``, ``cc_staff_ids``), told when an application enters the node.
- ``Application`` — a customer's request for a product version; ``status`` follows the node kind
  (intake → reviewing → approved → signed → disbursed) or closes it (rejected / withdrawn). At most one
  open application per customer and product (partial unique index over the open statuses).
- ``ApplicationNodeVisit`` — one stay in a node (entered_at / left_at: the dwell time), the responsible
  role/person, the SLA deadline and whether its reminder went out (once per visit); it is the node's task.
- ``ApplicationTransition`` — every move (from, to, event, who, when, comment). Append-only.
- ``ApplicationDocument`` — a required document received (kind, note), one per kind.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint, event, text, true
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = [
    "APPLICATION_STATUS_LABELS", "NODE_KIND_LABELS", "OPEN_STATUSES", "Application", "ApplicationDocument",
    "ApplicationFile",
    "ApplicationNodeVisit", "ApplicationStatus", "ApplicationTransition", "NodeKind", "WorkflowDefinition",
    "WorkflowNode",
]


class NodeKind(StrEnum):
    INTAKE = "intake"  # 进件
    REVIEW = "review"  # 初审 / 复审 / any added approval step
    SIGNING = "signing"  # 签约: approving means signing the contract
    DISBURSEMENT = "disbursement"  # 放款: approving means recording the disbursement
    SERVICING = "servicing"  # 贷后: the end of the application's road


NODE_KIND_LABELS = {"intake": "进件", "review": "审批", "signing": "签约", "disbursement": "放款", "servicing": "贷后"}


class ApplicationStatus(StrEnum):
    INTAKE = "intake"
    REVIEWING = "reviewing"
    APPROVED = "approved"  # at the signing node
    SIGNED = "signed"  # at the disbursement node
    DISBURSED = "disbursed"  # at servicing: the loan is active
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


OPEN_STATUSES = ("intake", "reviewing", "approved", "signed")
APPLICATION_STATUS_LABELS = {
    "intake": "进件中", "reviewing": "审批中", "approved": "已批准待签约", "signed": "已签约待放款",
    "disbursed": "已放款", "rejected": "已拒绝", "withdrawn": "已撤回",
}
_OPEN_SQL = "status IN ('intake', 'reviewing', 'approved', 'signed')"


class WorkflowDefinition(Base):
    __tablename__ = "lending_workflow_definition"
    __table_args__ = (
        Index("uq_lending_workflow_definition_one_active", "active", unique=True,
              sqlite_where=text("active"), postgresql_where=text("active")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    active: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str | None] = mapped_column(String(300))
    # One person may not approve two review nodes of the same application (初审 and 复审: four eyes).
    distinct_reviewers: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]


class WorkflowNode(Base):
    __tablename__ = "lending_workflow_node"
    __table_args__ = (
        UniqueConstraint("definition_id", "code"),
        UniqueConstraint("definition_id", "position"),
        CheckConstraint("kind IN ('intake', 'review', 'signing', 'disbursement', 'servicing')", name="kind_known"),
        CheckConstraint("sla_hours IS NULL OR sla_hours > 0", name="sla_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("lending_workflow_definition.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(40))
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    responsible_role: Mapped[str | None] = mapped_column(String(16))  # crm.models.Role
    responsible_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    sla_hours: Mapped[int | None]
    required_fields: Mapped[list[Any]] = mapped_column(JSON, default=list)  # keys of lending.workflow.FIELDS
    required_documents: Mapped[list[Any]] = mapped_column(JSON, default=list)  # document names
    routes: Mapped[list[Any] | None] = mapped_column(JSON, default=list)  # 流转条件, see the module docstring
    cc_roles: Mapped[list[Any] | None] = mapped_column(JSON, default=list)  # 抄送: crm.models.Role values
    cc_staff_ids: Mapped[list[Any] | None] = mapped_column(JSON, default=list)  # 抄送: staff ids


class Application(Base):
    __tablename__ = "lending_application"
    __table_args__ = (
        Index("uq_lending_application_one_open", "customer_id", "product_id", unique=True,
              sqlite_where=text(_OPEN_SQL), postgresql_where=text(_OPEN_SQL)),
        Index("ix_lending_application_status_node", "status", "current_node_id"),
        CheckConstraint("requested_amount > 0", name="amount_positive"),
        CheckConstraint("term_months > 0", name="term_positive"),
        CheckConstraint("status IN ('intake', 'reviewing', 'approved', 'signed', 'disbursed', 'rejected', "
                        "'withdrawn')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("lending_product.id"), index=True)
    product_version_id: Mapped[int] = mapped_column(ForeignKey("lending_product_version.id"))
    definition_id: Mapped[int] = mapped_column(ForeignKey("lending_workflow_definition.id"))
    current_node_id: Mapped[int | None] = mapped_column(ForeignKey("lending_workflow_node.id"))
    status: Mapped[str] = mapped_column(String(16), default=ApplicationStatus.INTAKE)
    requested_amount: Mapped[int]  # fen
    term_months: Mapped[int]
    channel: Mapped[str] = mapped_column(String(16), default="console")  # console | wecom | miniprogram
    idempotency_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # collected answers (required fields)
    risk_evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("lending_risk_evaluation.id"))
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(String(300))


class ApplicationNodeVisit(Base):
    __tablename__ = "lending_application_node_visit"
    __table_args__ = (
        Index("uq_lending_application_node_visit_open", "application_id", unique=True,
              sqlite_where=text("left_at IS NULL"), postgresql_where=text("left_at IS NULL")),
        Index("ix_lending_application_node_visit_sla", "sla_due_at",
              sqlite_where=text("left_at IS NULL AND reminded_at IS NULL"),
              postgresql_where=text("left_at IS NULL AND reminded_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("lending_application.id"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("lending_workflow_node.id"))
    responsible_role: Mapped[str | None] = mapped_column(String(16))
    responsible_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    work_task_id: Mapped[int | None] = mapped_column(ForeignKey("crm_work_task.id"))
    entered_at: Mapped[datetime]
    left_at: Mapped[datetime | None]
    sla_due_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))  # approve | reject | withdraw


class ApplicationTransition(Base):
    __tablename__ = "lending_application_transition"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("lending_application.id"), index=True)
    from_node_id: Mapped[int | None] = mapped_column(ForeignKey("lending_workflow_node.id"))
    to_node_id: Mapped[int | None] = mapped_column(ForeignKey("lending_workflow_node.id"))
    event: Mapped[str] = mapped_column(String(16))  # start | approve | reject | withdraw
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    actor_label: Mapped[str] = mapped_column(String(120))
    comment: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime]


class ApplicationDocument(Base):
    __tablename__ = "lending_application_document"
    __table_args__ = (UniqueConstraint("application_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("lending_application.id"))
    kind: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(String(200))
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    at: Mapped[datetime]


class ApplicationFile(Base):
    """A file kept with an application (an ID photo, a signed paper, a bank statement): encrypted on disk by
    core.sealed_files, uploaded in the console or carried over from the mini-program (then the same stored
    file as its mp_document). Never rewritten; the document kind it proves is marked received."""

    __tablename__ = "lending_application_file"
    __table_args__ = (Index("ix_lending_application_file_application", "application_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("lending_application.id"))
    kind: Mapped[str] = mapped_column(String(40))  # the document it proves, e.g. 身份证
    file_name: Mapped[str] = mapped_column(String(120))
    content_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    storage_name: Mapped[str] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(String(20))  # console | miniprogram
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    at: Mapped[datetime]


@event.listens_for(ApplicationTransition, "before_update")
@event.listens_for(ApplicationTransition, "before_delete")
@event.listens_for(WorkflowNode, "before_update")
@event.listens_for(WorkflowNode, "before_delete")
def _refuse_change(*_: Any) -> None:
    raise RuntimeError("workflow nodes and application transitions are never changed: save a new version")
