"""Approval controls a funder accepts (审批管控).

- Approving a review node against the rules' verdict 拒绝, or for more than the computed credit limit, is
  an override: only the roles in ``SCRM_LENDING_OVERRIDE_ROLES`` may do it, and only with a written
  reason, which goes into the transition's comment and an audit entry (``lending.application.override``).
- One person may not approve two review nodes of the same application (初审 and 复审), unless the
  workflow version turns this off (``WorkflowDefinition.distinct_reviewers``, on by default).
- :func:`options` says what the viewer may press, so the console shows only those buttons; the same
  checks run again in :func:`check` when the approval is fired, so the API refuses exactly the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.errors import PermissionDenied, ValidationFailed
from core.money import format_yuan
from core.settings import get_settings
from crm.models import ROLE_LABELS
from crm.scope import Viewer
from lending.models import (
    Application,
    ApplicationTransition,
    NodeKind,
    RiskEvaluation,
    WorkflowDefinition,
    WorkflowNode,
)

REASON_MIN_CHARS = 6


class OverrideNotAllowed(PermissionDenied):
    code = "override_not_allowed"
    message = "该申请需要越权审批，您的角色无此权限"


class OverrideReasonRequired(ValidationFailed):
    code = "override_reason_required"
    message = f"越权审批必须填写理由（至少 {REASON_MIN_CHARS} 个字）"


class SameReviewer(PermissionDenied):
    code = "same_reviewer"
    message = "同一申请的两个审批节点不能由同一人审批通过"


def override_roles() -> frozenset[str]:
    return frozenset(r.strip() for r in get_settings().lending_override_roles.split(",") if r.strip())


@dataclass(frozen=True)
class Exceedance:
    """Why approving this application overrides the rules: the verdict, and the amount against the limit."""

    outcome: str
    limit_amount: int | None
    requested_amount: int

    @property
    def verdict_reject(self) -> bool:
        return self.outcome == "reject"

    @property
    def over_limit(self) -> bool:
        return self.limit_amount is not None and self.requested_amount > self.limit_amount

    def describe(self) -> str:
        parts = []
        if self.verdict_reject:
            parts.append("风控结论为「拒绝」")
        if self.over_limit:
            parts.append(f"申请金额 {format_yuan(self.requested_amount)} 超过授信额度 {format_yuan(self.limit_amount or 0)}")
        return "，".join(parts)


def exceedance(session: Session, app: Application, node: WorkflowNode | None) -> Exceedance | None:
    """The override an approval of ``node`` would be; None when the rules allow it (or it is no review)."""
    if node is None or node.kind != NodeKind.REVIEW or app.risk_evaluation_id is None:
        return None
    evaluation = session.get(RiskEvaluation, app.risk_evaluation_id)
    if evaluation is None:
        return None
    found = Exceedance(evaluation.outcome, evaluation.credit_limit_amount, app.requested_amount)
    return found if found.verdict_reject or found.over_limit else None


def _approved_other_review(session: Session, app: Application, node: WorkflowNode, staff_id: int) -> bool:
    definition = session.get(WorkflowDefinition, app.definition_id)
    if definition is None or not definition.distinct_reviewers:
        return False
    return session.scalar(
        select(ApplicationTransition.id)
        .join(WorkflowNode, WorkflowNode.id == ApplicationTransition.from_node_id)
        .where(ApplicationTransition.application_id == app.id, ApplicationTransition.event == "approve",
               ApplicationTransition.by_staff_id == staff_id, WorkflowNode.kind == NodeKind.REVIEW,
               WorkflowNode.id != node.id).limit(1)) is not None


def check(session: Session, viewer: Viewer | None, app: Application, node: WorkflowNode,
          override_reason: str | None) -> str | None:
    """Refuse an approval the controls forbid; the override's note for the transition comment, or None."""
    if viewer is None or node.kind != NodeKind.REVIEW:
        return None
    if viewer.staff_id is not None and _approved_other_review(session, app, node, viewer.staff_id):
        raise SameReviewer()
    over = exceedance(session, app, node)
    if over is None:
        return None
    if viewer.role not in override_roles():
        label = ROLE_LABELS.get(viewer.role, viewer.role)
        raise OverrideNotAllowed(f"{over.describe()}，批准属于越权审批，您的角色（{label}）无此权限")
    reason = (override_reason or "").strip()
    if len(reason) < REASON_MIN_CHARS:
        raise OverrideReasonRequired(f"{over.describe()}，批准须填写越权理由（至少 {REASON_MIN_CHARS} 个字）")
    audit.record(session, "lending.application.override", entity_type="lending_application", entity_id=app.id,
                 after={"node": node.name, "verdict": over.outcome, "credit_limit_amount": over.limit_amount,
                        "approved_amount": over.requested_amount, "reason": reason}, detail=reason)
    return f"【越权审批】{over.describe()}；理由：{reason}"


@dataclass(frozen=True)
class Options:
    """What the viewer may press on the current node."""

    may_approve: bool
    needs_override: bool
    refusal: str | None  # why there is no approve button (shown instead)
    exceedance: Exceedance | None


def options(session: Session, viewer: Viewer, app: Application, node: WorkflowNode | None, *, may_act: bool) -> Options:
    if node is None:
        return Options(False, False, None, None)
    if not may_act:
        return Options(False, False, "您不是本节点的负责人", None)
    over = exceedance(session, app, node)
    if node.kind == NodeKind.REVIEW and viewer.staff_id is not None \
            and _approved_other_review(session, app, node, viewer.staff_id):
        return Options(False, False, SameReviewer.message, over)
    if over is not None and viewer.role not in override_roles():
        return Options(False, True, f"{over.describe()}：批准属于越权审批，需由有越权权限的角色处理", over)
    return Options(True, over is not None, None, over)
