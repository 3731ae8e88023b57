"""Workflow definitions as data: the default 进件 → 初审 → 复审 → 签约 → 放款 → 贷后, and the designer's save.

A node may carry conditional next nodes (流转条件, :class:`RouteSpec`: by the requested amount and/or the
product; the first matching one decides, none matching: the next node in order) and CC recipients (抄送:
roles and/or named staff, told when an application enters the node; they get no approval rights).
A condition only moves forward, to a later 审批 or the 签约 node: a route back would loop for ever (the
amount and product never change), one past 签约 would skip the contract.

A definition is a numbered version; saving the designer validates the node list and creates version
N+1 (its nodes inserted once, never changed), then switches the active flag with conditional UPDATEs
(the partial unique index over ``active`` makes two concurrent saves end with one active version).
Applications keep the definition they started on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.money import format_yuan
from crm.models import ROLE_LABELS, Staff, StaffStatus
from lending.application_exceptions import InvalidWorkflow
from lending.models import NODE_KIND_LABELS, NodeKind, Product, WorkflowDefinition, WorkflowNode

__all__ = [
    "AMOUNT_OPS", "DEFAULT_NODES", "FIELDS", "NodeSpec", "RouteSpec", "active_definition", "cc_text",
    "definitions", "describe_route", "ensure_active", "nodes_of", "parse_cc", "routes_of", "save_definition",
]

# Application fields a node may require (key -> Chinese label); values are kept in Application.fields.
FIELDS: dict[str, str] = {
    "purpose": "借款用途", "monthly_income": "月收入（元）", "employer": "工作单位", "address": "居住地址",
    "emergency_contact": "紧急联系人", "collateral": "抵押物", "bank_account": "收款账户（尾号）",
}

_FIELD_KEYS = {label: key for key, label in FIELDS.items()}
_KIND_RANK = {NodeKind.INTAKE: 0, NodeKind.REVIEW: 1, NodeKind.SIGNING: 2, NodeKind.DISBURSEMENT: 3,
              NodeKind.SERVICING: 4}
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# the requested amount compared with a condition's amount (operator -> Chinese)
AMOUNT_OPS: dict[str, str] = {"gt": "大于", "ge": "大于等于", "lt": "小于", "le": "小于等于"}
MAX_ROUTES = 5
MAX_CC = 20


@dataclass(frozen=True)
class RouteSpec:
    """One conditional next node: ``to`` (a node code) when every condition given holds."""

    to: str
    amount_op: str | None = None
    amount_fen: int | None = None
    product_id: int | None = None

    def matches(self, amount_fen: int | None, product_id: int | None) -> bool:
        if self.product_id is not None and product_id != self.product_id:
            return False
        if self.amount_op is not None:
            if amount_fen is None or self.amount_fen is None:
                return False
            a, b = amount_fen, self.amount_fen
            return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[self.amount_op]
        return True

    def as_json(self) -> dict[str, object]:
        return {"to": self.to, "amount_op": self.amount_op, "amount_fen": self.amount_fen,
                "product_id": self.product_id}

    @classmethod
    def of(cls, data: dict[str, object]) -> RouteSpec:
        amount, product = data.get("amount_fen"), data.get("product_id")
        return cls(str(data["to"]), str(data["amount_op"]) if data.get("amount_op") else None,
                   int(amount) if isinstance(amount, int) else None,
                   int(product) if isinstance(product, int) else None)


def routes_of(node: WorkflowNode) -> tuple[RouteSpec, ...]:
    return tuple(RouteSpec.of(r) for r in node.routes or ())


@dataclass(frozen=True)
class NodeSpec:
    code: str
    name: str
    kind: str
    responsible_role: str | None = None
    responsible_staff_id: int | None = None
    sla_hours: int | None = None
    required_fields: Sequence[str] = field(default_factory=tuple)
    required_documents: Sequence[str] = field(default_factory=tuple)
    routes: Sequence[RouteSpec] = field(default_factory=tuple)
    cc_roles: Sequence[str] = field(default_factory=tuple)
    cc_staff_ids: Sequence[int] = field(default_factory=tuple)

    @classmethod
    def of(cls, node: WorkflowNode) -> NodeSpec:
        return cls(node.code, node.name, node.kind, node.responsible_role, node.responsible_staff_id,
                   node.sla_hours, tuple(node.required_fields or ()), tuple(node.required_documents or ()),
                   routes_of(node), tuple(node.cc_roles or ()), tuple(node.cc_staff_ids or ()))


DEFAULT_NODES: tuple[NodeSpec, ...] = (
    NodeSpec("intake", "进件", "intake", "sales", None, 24, ("purpose",), ("身份证",)),
    NodeSpec("first_review", "初审", "review", "risk", None, 24, ("monthly_income",), ()),
    NodeSpec("second_review", "复审", "review", "risk", None, 24, (), ()),
    NodeSpec("signing", "签约", "signing", "sales", None, 48, (), ()),
    NodeSpec("disbursement", "放款", "disbursement", "finance", None, 24, (), ()),
    NodeSpec("servicing", "贷后", "servicing", None, None, None, (), ()),
)


def _clean_list(values: Sequence[str] | str | None, label: str, limit: int) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = re.split(r"[,，、\s]+", values)
    out = list(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))
    if any(len(v) > limit for v in out):
        raise InvalidWorkflow(f"{label}名称过长（最多 {limit} 字）")
    return out


def validate(session: Session, specs: Sequence[NodeSpec]) -> list[NodeSpec]:
    """The node list in order, cleaned; refused with the reason (Chinese) when it cannot run."""
    if not specs:
        raise InvalidWorkflow("流程至少需要一个节点")
    if len(specs) > 20:
        raise InvalidWorkflow("流程最多 20 个节点")
    cleaned: list[NodeSpec] = []
    seen_codes: set[str] = set()
    for i, spec in enumerate(specs, start=1):
        where = f"第 {i} 个节点"
        code = (spec.code or "").strip().lower()
        if not _CODE.match(code):
            raise InvalidWorkflow(f"{where}的编码须是小写字母开头的字母、数字或下划线（最多 32 位）：{spec.code}",
                                  field="code")
        if code in seen_codes:
            raise InvalidWorkflow(f"节点编码重复：{code}", field="code")
        seen_codes.add(code)
        name = (spec.name or "").strip()
        if not name or len(name) > 40:
            raise InvalidWorkflow(f"{where}的名称须填写（最多 40 字）", field="name")
        try:
            kind = NodeKind(spec.kind)
        except ValueError:
            raise InvalidWorkflow(f"{where}的类型不正确：{spec.kind}", field="kind") from None
        role = (spec.responsible_role or "").strip() or None
        if role is not None and role not in ROLE_LABELS:
            raise InvalidWorkflow(f"{where}的负责角色不正确：{role}", field="responsible_role")
        staff_id = spec.responsible_staff_id
        if staff_id is not None and session.scalar(select(Staff.id).where(
                Staff.id == staff_id, Staff.status == StaffStatus.ACTIVE)) is None:
            raise InvalidWorkflow(f"{where}的负责人不存在或已离职", field="responsible_staff_id")
        sla = spec.sla_hours
        if sla is not None and (isinstance(sla, bool) or not isinstance(sla, int) or not 1 <= sla <= 24 * 90):
            raise InvalidWorkflow(f"{where}的时限须是 1 到 2160 小时", field="sla_hours")
        # a field by its key (purpose) or its Chinese label (借款用途)
        fields_ = list(dict.fromkeys(_FIELD_KEYS.get(f, f) for f in _clean_list(spec.required_fields, "必填字段", 32)))
        unknown = [f for f in fields_ if f not in FIELDS]
        if unknown:
            raise InvalidWorkflow(f"{where}的必填字段未知：{'、'.join(unknown)}（可选：{'、'.join(FIELDS.values())}）",
                                  field="required_fields")
        docs = _clean_list(spec.required_documents, "必备材料", 40)
        cc_roles = list(dict.fromkeys(spec.cc_roles or ()))
        bad_roles = [r for r in cc_roles if r not in ROLE_LABELS]
        if bad_roles:
            raise InvalidWorkflow(f"{where}的抄送角色不正确：{'、'.join(bad_roles)}", field="cc")
        cc_staff = list(dict.fromkeys(spec.cc_staff_ids or ()))
        if len(cc_roles) + len(cc_staff) > MAX_CC:
            raise InvalidWorkflow(f"{where}的抄送对象最多 {MAX_CC} 个", field="cc")
        if cc_staff and len(set(session.scalars(select(Staff.id).where(
                Staff.id.in_(cc_staff), Staff.status == StaffStatus.ACTIVE)))) != len(cc_staff):
            raise InvalidWorkflow(f"{where}的抄送人不存在或已离职", field="cc")
        cleaned.append(NodeSpec(code, name, kind, role, staff_id, sla, tuple(fields_), tuple(docs),
                                tuple(spec.routes or ()), tuple(cc_roles), tuple(cc_staff)))
    kinds = [NodeKind(s.kind) for s in cleaned]
    for single in (NodeKind.INTAKE, NodeKind.SIGNING, NodeKind.DISBURSEMENT, NodeKind.SERVICING):
        if kinds.count(single) != 1:
            raise InvalidWorkflow(f"流程须有且只有一个「{NODE_KIND_LABELS[single]}」类节点", field="kind")
    ranks = [_KIND_RANK[k] for k in kinds]
    if ranks != sorted(ranks):
        raise InvalidWorkflow("节点顺序须为：进件 → 审批（可多个）→ 签约 → 放款 → 贷后", field="position")
    _validate_routes(session, cleaned)
    return cleaned


def _validate_routes(session: Session, specs: Sequence[NodeSpec]) -> None:
    """Each condition names a later 审批/签约 node, a known product, a positive amount with its comparison."""
    position = {s.code: i for i, s in enumerate(specs)}
    product_ids = {r.product_id for s in specs for r in s.routes if r.product_id is not None}
    known = set(session.scalars(select(Product.id).where(Product.id.in_(product_ids)))) if product_ids else set()
    for i, spec in enumerate(specs):
        if not spec.routes:
            continue
        where = f"「{spec.name}」的流转条件"
        if spec.kind not in (NodeKind.INTAKE, NodeKind.REVIEW):
            raise InvalidWorkflow(f"{where}：只有进件和审批节点可以设置流转条件", field="routes")
        if len(spec.routes) > MAX_ROUTES:
            raise InvalidWorkflow(f"{where}最多 {MAX_ROUTES} 条", field="routes")
        for n, route in enumerate(spec.routes, start=1):
            rule = f"{where}第 {n} 条"
            target = position.get(route.to)
            if target is None:
                raise InvalidWorkflow(f"{rule}指向的节点不存在：{route.to}", field="routes")
            if target <= i:
                raise InvalidWorkflow(f"{rule}指向「{specs[target].name}」，在本节点之前或就是本节点："
                                      "申请会在节点间无限循环，只能流转到后面的节点", field="routes")
            if specs[target].kind not in (NodeKind.REVIEW, NodeKind.SIGNING):
                raise InvalidWorkflow(f"{rule}指向「{specs[target].name}」：只能流转到审批或签约节点（不能跳过签约）",
                                      field="routes")
            if (route.amount_op is None) != (route.amount_fen is None):
                raise InvalidWorkflow(f"{rule}：金额条件须同时选择比较方式并填写金额", field="routes")
            if route.amount_op is not None and route.amount_op not in AMOUNT_OPS:
                raise InvalidWorkflow(f"{rule}：金额比较方式不正确：{route.amount_op}", field="routes")
            if route.amount_fen is not None and (isinstance(route.amount_fen, bool)
                                                 or not isinstance(route.amount_fen, int) or route.amount_fen <= 0):
                raise InvalidWorkflow(f"{rule}：金额须大于 0", field="routes")
            if route.product_id is not None and route.product_id not in known:
                raise InvalidWorkflow(f"{rule}：产品不存在", field="routes")
            if route.amount_op is None and route.product_id is None and n < len(spec.routes):
                raise InvalidWorkflow(f"{rule}没有条件（总是满足），其后的条件永远不会生效：请把它放在最后",
                                      field="routes")


def describe_route(route: RouteSpec, names: dict[str, str], products: dict[int, str]) -> str:
    """A condition in Chinese: 申请金额大于 ¥200,000.00 且产品为「房抵贷」→ 复审."""
    parts = []
    if route.amount_op is not None and route.amount_fen is not None:
        parts.append(f"申请金额{AMOUNT_OPS.get(route.amount_op, route.amount_op)} {format_yuan(route.amount_fen)}")
    if route.product_id is not None:
        parts.append(f"产品为「{products.get(route.product_id, f'#{route.product_id}')}」")
    return f"{'且'.join(parts) or '其余情况'} → {names.get(route.to, route.to)}"


def parse_cc(session: Session, text: str | None) -> tuple[list[str], list[int]]:
    """CC recipients typed as 角色名 or 员工姓名/登录名, separated by 、 or commas -> (roles, staff ids)."""
    roles: list[str] = []
    staff_ids: list[int] = []
    by_label = {label: key for key, label in ROLE_LABELS.items()}
    for token in _clean_list(text, "抄送对象", 64):
        role = by_label.get(token) or (token if token in ROLE_LABELS else None)
        if role is not None:
            roles.append(role)
            continue
        found = list(session.scalars(select(Staff.id).where(
            Staff.status == StaffStatus.ACTIVE, (Staff.display_name == token) | (Staff.username == token)).limit(2)))
        if not found:
            raise InvalidWorkflow(f"抄送对象未找到：{token}（可填角色：{'、'.join(ROLE_LABELS.values())}，或在职员工的姓名）",
                                  field="cc")
        if len(found) > 1:
            raise InvalidWorkflow(f"有多位员工叫「{token}」，请改填其登录名", field="cc")
        staff_ids.append(found[0])
    return roles, staff_ids


def cc_text(roles: Sequence[str], staff_names: Sequence[str]) -> str:
    return "、".join([ROLE_LABELS.get(r, r) for r in roles] + list(staff_names))


def active_definition(session: Session) -> WorkflowDefinition | None:
    return session.scalar(select(WorkflowDefinition).where(WorkflowDefinition.active.is_(True)))


def nodes_of(session: Session, definition_id: int) -> list[WorkflowNode]:
    return list(session.scalars(select(WorkflowNode).where(WorkflowNode.definition_id == definition_id)
                                .order_by(WorkflowNode.position)))


def definitions(session: Session) -> list[WorkflowDefinition]:
    return list(session.scalars(select(WorkflowDefinition).order_by(WorkflowDefinition.version.desc())))


def _insert(session: Session, specs: Sequence[NodeSpec], *, by_staff_id: int | None,
            note: str | None, distinct_reviewers: bool = True) -> WorkflowDefinition:
    last = session.scalar(select(func.max(WorkflowDefinition.version))) or 0
    definition = WorkflowDefinition(version=last + 1, active=False, note=(note or "").strip()[:300] or None,
                                    distinct_reviewers=distinct_reviewers,
                                    created_by_staff_id=by_staff_id, created_at=clock.now())
    session.add(definition)
    session.flush()
    for position, spec in enumerate(specs, start=1):
        session.add(WorkflowNode(
            definition_id=definition.id, code=spec.code, name=spec.name, position=position, kind=spec.kind,
            responsible_role=spec.responsible_role, responsible_staff_id=spec.responsible_staff_id,
            sla_hours=spec.sla_hours, required_fields=list(spec.required_fields),
            required_documents=list(spec.required_documents), routes=[r.as_json() for r in spec.routes],
            cc_roles=list(spec.cc_roles), cc_staff_ids=list(spec.cc_staff_ids)))
    session.flush()
    session.execute(update(WorkflowDefinition).where(WorkflowDefinition.active.is_(True))
                    .values(active=False))
    session.execute(update(WorkflowDefinition).where(WorkflowDefinition.id == definition.id).values(active=True))
    session.flush()
    session.refresh(definition)
    return definition


def ensure_active(session: Session) -> WorkflowDefinition:
    """The active definition; the default workflow is created as version 1 when there is none."""
    definition = active_definition(session)
    if definition is not None:
        return definition
    try:
        with session.begin_nested():
            definition = _insert(session, DEFAULT_NODES, by_staff_id=None, note="默认流程")
    except IntegrityError:  # another transaction created it first
        definition = active_definition(session)
        if definition is None:
            raise
    return definition


def save_definition(session: Session, specs: Sequence[NodeSpec], *, by_staff_id: int | None = None,
                    note: str | None = None, actor: audit.Actor | None = None,
                    distinct_reviewers: bool = True) -> WorkflowDefinition:
    """The designer's save: a new active version with these nodes (running applications keep theirs)."""
    cleaned = validate(session, specs)
    ensure_active(session)
    # Lock the active version: two designers saving at once number their versions one after the other.
    # After waiting, the row we locked may no longer be the active one: read again (a new statement sees it).
    before = None
    for _ in range(3):
        before = session.scalar(select(WorkflowDefinition).where(WorkflowDefinition.active.is_(True))
                                .with_for_update())
        if before is not None:
            break
    if before is None:
        raise InvalidWorkflow("流程正在被他人保存，请刷新页面后重试")
    if [NodeSpec.of(n) for n in nodes_of(session, before.id)] == cleaned \
            and before.distinct_reviewers == distinct_reviewers:
        return before
    definition = _insert(session, cleaned, by_staff_id=by_staff_id, note=note, distinct_reviewers=distinct_reviewers)
    audit.record(session, "lending.workflow.save", entity_type="lending_workflow_definition",
                 entity_id=definition.id,
                 before={"version": before.version, "distinct_reviewers": before.distinct_reviewers},
                 after={"version": definition.version, "distinct_reviewers": distinct_reviewers,
                        "nodes": [f"{s.code}:{s.name}:{s.kind}:{s.responsible_role or ''}:{s.sla_hours or ''}"
                                  for s in cleaned],
                        "routes": {s.code: [r.as_json() for r in s.routes] for s in cleaned if s.routes},
                        "cc": {s.code: {"roles": list(s.cc_roles), "staff_ids": list(s.cc_staff_ids)}
                               for s in cleaned if s.cc_roles or s.cc_staff_ids}}, actor=actor)
    return definition
