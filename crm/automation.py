"""Automation rules (自动化规则): data, not code.

A rule has a trigger, a list of conditions (all must hold) and one action:

* event triggers — ``grade_changed`` and ``stage_changed`` (task ``crm.customer_changed``, enqueued by
  crm.customers.set_grade / set_stage and by this module's own set_grade action);
* time triggers — ``unassigned_for`` (hours in a pool), ``no_followup_for`` (days without a
  follow-up) and ``customer_created`` (new customers since the rule exists), found by the periodic
  job ``crm.automation_scan`` with one query per rule.

Every firing inserts an :class:`AutomationFiring` row whose unique (rule, customer, window) key
makes a rule fire once per window: per unassigned spell, per follow-up gap, once per creation, and,
for change events, once per customer, new value and business day.

Loops: a ``set_grade`` action re-enqueues ``crm.customer_changed`` with the chain of rules that led
to it; a rule already in the chain does not fire again, and a chain stops after ``MAX_CHAIN`` steps.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, insert, select, true, type_coerce, update
from sqlalchemy.orm import Session

from core import audit, clock, outbox
from core.db import UTCDateTime
from crm import sources
from crm.customers import CHANGED_TASK, followup_clock
from crm.models import (
    CUSTOMER_TYPE_LABELS,
    STAGE_LABELS,
    AutomationFiring,
    AutomationRule,
    Customer,
    CustomerEvent,
    CustomerStatus,
    CustomerType,
    Grade,
    Pool,
    Role,
    Staff,
    StaffStatus,
    Stage,
    TaskStatus,
    WorkTask,
)
from crm.permissions import permission
from crm.scope import Viewer
from crm.work_common import customer_label, insert_ignore, notify_many
from crm.work_exceptions import InvalidRule, RuleNotFound, WorkForbidden

TRIGGER_LABELS = {
    "grade_changed": "等级变更", "stage_changed": "阶段变更", "customer_created": "新客户录入",
    "unassigned_for": "在公海未分配超过（小时）", "no_followup_for": "未跟进超过（天）",
}
EVENT_TRIGGERS = {"grade": "grade_changed", "stage": "stage_changed"}
TIMED_TRIGGERS = ("unassigned_for", "no_followup_for", "customer_created")
FIELD_LABELS = {"grade": "等级", "stage": "阶段", "source": "来源", "region": "地区", "customer_type": "客户类型"}
FIELDS = {"grade": Customer.grade, "stage": Customer.stage, "source": Customer.source, "region": Customer.region,
          "customer_type": Customer.customer_type}
OP_LABELS = {"eq": "等于", "ne": "不等于", "in": "属于"}
ACTION_LABELS = {"create_task": "创建待办", "notify": "发送通知", "set_grade": "设置等级"}
TARGET_LABELS = {"owner": "负责人", "supervisor": "负责人所在部门主管", "staff": "指定员工"}
RULE_EDITORS = permission("work.rules", "自动化规则", "新建和维护自动化规则", {Role.ADMIN, Role.MANAGER}, group="工作")
MAX_CHAIN = 5
SCAN_BATCH = 1000  # customers per rule per scan; the next scan continues
DIGEST_OVER = 5  # more customers than this for one person in one batch: one digest notification
CREATED_LOOKBACK = timedelta(days=7)
_PLACEHOLDER = re.compile(r"\{(name|grade|stage|source|region|phone)\}")


# --- rules as data -------------------------------------------------------------------------------


def _ensure_editor(viewer: Viewer) -> None:
    if not viewer.has_role(*RULE_EDITORS):
        raise WorkForbidden("只有经理或系统管理员可以管理自动化规则")


def validate_rule(session: Session, *, name: str, trigger: str, trigger_value: int | None,
                  conditions: Sequence[dict[str, Any]], action: dict[str, Any]) -> dict[str, Any]:
    """Check a rule and return its normalised fields; InvalidRule (Chinese message) otherwise."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise InvalidRule("规则名称不能为空且不超过 80 字", field="name")
    if trigger not in TRIGGER_LABELS:
        raise InvalidRule(f"未知的触发条件：{trigger}", field="trigger")
    if trigger in ("unassigned_for", "no_followup_for"):
        limit = 24 * 90 if trigger == "unassigned_for" else 365
        if not isinstance(trigger_value, int) or not 1 <= trigger_value <= limit:
            unit = "小时" if trigger == "unassigned_for" else "天"
            raise InvalidRule(f"请填写 1–{limit} {unit}", field="trigger_value")
    else:
        trigger_value = None
    grades = set(session.scalars(select(Grade.code)))
    allowed = {"grade": grades, "stage": set(Stage.__members__.values()),
               "customer_type": set(CustomerType.__members__.values())}
    clean_conditions = []
    for cond in conditions or []:
        fld, op, value = cond.get("field"), cond.get("op", "eq"), cond.get("value")
        if fld not in FIELDS:
            raise InvalidRule(f"未知的条件字段：{fld}", field="conditions")
        if op not in OP_LABELS:
            raise InvalidRule(f"未知的条件运算：{op}", field="conditions")
        values = value if isinstance(value, list) else [value]
        values = [str(v).strip() for v in values if v is not None and str(v).strip()]
        if not values or (op != "in" and len(values) != 1):
            raise InvalidRule(f"条件「{FIELD_LABELS[fld]}」缺少取值", field="conditions")
        bad = [v for v in values if fld in allowed and v not in allowed[fld]]
        if bad:
            raise InvalidRule(f"条件「{FIELD_LABELS[fld]}」的取值不正确：{'、'.join(bad)}", field="conditions")
        clean_conditions.append({"field": fld, "op": op, "value": values if op == "in" else values[0]})
    kind = (action or {}).get("type")
    if kind == "create_task":
        title = str(action.get("title") or "").strip()
        hours = action.get("due_hours", 24)
        if not title or len(title) > 150:
            raise InvalidRule("待办标题不能为空且不超过 150 字", field="action")
        if not isinstance(hours, int) or not 0 <= hours <= 24 * 30:
            raise InvalidRule("待办期限必须是 0–720 小时", field="action")
        clean_action: dict[str, Any] = {"type": kind, "title": title, "due_hours": hours}
    elif kind == "notify":
        target = action.get("target")
        if target not in TARGET_LABELS:
            raise InvalidRule("请选择通知对象", field="action")
        title = str(action.get("title") or name).strip()[:120]
        clean_action = {"type": kind, "target": target, "title": title,
                        "body": str(action.get("body") or "").strip()[:500]}
        if target == "staff":
            staff = session.get(Staff, action.get("staff_id")) if action.get("staff_id") else None
            if staff is None or staff.status != StaffStatus.ACTIVE:
                raise InvalidRule("指定的通知员工不存在或已离职", field="action")
            clean_action["staff_id"] = staff.id
    elif kind == "set_grade":
        if action.get("grade") not in grades:
            raise InvalidRule("请选择要设置的等级", field="action")
        clean_action = {"type": kind, "grade": action["grade"]}
    else:
        raise InvalidRule("请选择动作", field="action")
    return {"name": name, "trigger": trigger, "trigger_value": trigger_value, "conditions": clean_conditions,
            "action": clean_action}


def create_rule(session: Session, viewer: Viewer, *, name: str, trigger: str, trigger_value: int | None = None,
                conditions: Sequence[dict[str, Any]] = (), action: dict[str, Any], active: bool = True
                ) -> AutomationRule:
    _ensure_editor(viewer)
    fields = validate_rule(session, name=name, trigger=trigger, trigger_value=trigger_value,
                           conditions=conditions, action=action)
    now = clock.now()
    rule = AutomationRule(**fields, active=active, created_by=viewer.staff_id, created_at=now, updated_at=now)
    session.add(rule)
    session.flush()
    audit.record(session, "automation.rule.create", entity_type="automation_rule", entity_id=rule.id,
                 after={"name": rule.name, "trigger": trigger, "action": clean_str(rule.action)})
    return rule


def clean_str(value: object) -> str:
    return str(value)[:400]


def get_rule(session: Session, rule_id: int) -> AutomationRule:
    rule = session.get(AutomationRule, rule_id)
    if rule is None:
        raise RuleNotFound()
    return rule


def update_rule(session: Session, viewer: Viewer, rule_id: int, **changes: Any) -> AutomationRule:
    _ensure_editor(viewer)
    rule = get_rule(session, rule_id)
    current = {"name": rule.name, "trigger": rule.trigger, "trigger_value": rule.trigger_value,
               "conditions": rule.conditions, "action": rule.action}
    current.update({k: v for k, v in changes.items() if k in current})
    fields = validate_rule(session, **current)
    before = {"name": rule.name, "trigger": rule.trigger, "action": clean_str(rule.action)}
    for key, value in fields.items():
        setattr(rule, key, value)
    rule.updated_at = clock.now()
    session.flush()
    audit.record(session, "automation.rule.update", entity_type="automation_rule", entity_id=rule.id,
                 before=before, after={"name": rule.name, "trigger": rule.trigger, "action": clean_str(rule.action)})
    return rule


def set_active(session: Session, viewer: Viewer, rule_id: int, active: bool) -> AutomationRule:
    _ensure_editor(viewer)
    rule = get_rule(session, rule_id)
    if rule.active != active:
        rule.active, rule.updated_at = active, clock.now()
        session.flush()
        audit.record(session, "automation.rule." + ("enable" if active else "disable"),
                     entity_type="automation_rule", entity_id=rule.id)
    return rule


def list_rules(session: Session) -> list[AutomationRule]:
    return list(session.scalars(select(AutomationRule).order_by(AutomationRule.active.desc(), AutomationRule.id)))


def _value_label(field: str, value: object) -> str:
    """A condition's value as a person reads it (credit -> 信用贷, miniprogram -> 小程序)."""
    text = str(value)
    if field == "customer_type":
        return CUSTOMER_TYPE_LABELS.get(text, text)
    if field == "stage":
        return STAGE_LABELS.get(text, text)
    if field == "source":
        return sources.label(text)
    return text


def describe(rule: AutomationRule) -> str:
    """A one-line Chinese description for lists."""
    trig = TRIGGER_LABELS.get(rule.trigger, rule.trigger)
    if rule.trigger_value:
        trig = trig.replace("（小时）", f" {rule.trigger_value} 小时").replace("（天）", f" {rule.trigger_value} 天")
    conds = "且".join(f"{FIELD_LABELS.get(c['field'], c['field'])}{OP_LABELS.get(c['op'], c['op'])}"
                     + "/".join(_value_label(c["field"], v)
                                for v in (c["value"] if isinstance(c["value"], list) else [c["value"]]))
                     for c in rule.conditions or [])
    act = rule.action or {}
    what = ACTION_LABELS.get(act.get("type"), "?")
    if act.get("type") == "create_task":
        what += f"「{act.get('title')}」（{act.get('due_hours')} 小时内）"
    elif act.get("type") == "notify":
        what += f"给{TARGET_LABELS.get(act.get('target'), '?')}"
    elif act.get("type") == "set_grade":
        what += f" {act.get('grade')}"
    return f"当 {trig}" + (f"，且 {conds}" if conds else "") + f" → {what}"


# --- conditions ----------------------------------------------------------------------------------


def condition_clause(conditions: Sequence[dict[str, Any]]) -> ColumnElement[bool]:
    clauses = []
    for cond in conditions or []:
        column = FIELDS[cond["field"]]
        if cond["op"] == "eq":
            clauses.append(column == cond["value"])
        elif cond["op"] == "ne":
            clauses.append(func.coalesce(column, "") != cond["value"])
        else:
            clauses.append(column.in_(list(cond["value"])))
    return and_(true(), *clauses)


# --- firing --------------------------------------------------------------------------------------

_CUSTOMER_COLUMNS = (Customer.id, Customer.name, Customer.phone_masked, Customer.grade, Customer.stage,
                     Customer.source, Customer.region, Customer.owner_id, Customer.pool_id)


def _render(template: str, row: Any) -> str:
    values = {"name": customer_label(row.name, row.phone_masked, row.id), "grade": row.grade or "-",
              "stage": row.stage, "source": row.source, "region": row.region or "-", "phone": row.phone_masked or "-"}
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def _claim(session: Session, rule: AutomationRule, keyed: Sequence[tuple[int, str]]) -> list[int]:
    """Insert firings (customer_id, window_key); the customers whose firing was new."""
    now = clock.now()
    rows = [{"rule_id": rule.id, "customer_id": cid, "window_key": key[:64], "fired_at": now} for cid, key in keyed]
    return [r.customer_id for r in insert_ignore(session, AutomationFiring, rows,
                                                 ("rule_id", "customer_id", "window_key"),
                                                 (AutomationFiring.customer_id,))]


def _fire(session: Session, rule: AutomationRule, customer_ids: Sequence[int], chain: Sequence[int] = ()) -> int:
    """Run the rule's action for these customers (already claimed); returns how many it acted on."""
    if not customer_ids:
        return 0
    rows = session.execute(select(*_CUSTOMER_COLUMNS).where(Customer.id.in_(list(customer_ids)))).all()
    action = rule.action or {}
    kind = action.get("type")
    if kind == "create_task":
        acted = _create_tasks(session, rule, rows)
    elif kind == "notify":
        acted = _notify(session, rule, rows)
    elif kind == "set_grade":
        acted = _set_grade(session, rule, rows, chain)
    else:
        acted = []
    if acted:
        now = clock.now()
        summary = f"自动化规则「{rule.name}」：{ACTION_LABELS.get(kind, kind)}"
        session.execute(insert(CustomerEvent), [
            {"customer_id": cid, "at": now, "kind": "automation", "summary": summary[:300], "actor_staff_id": None,
             "ref_type": "automation_rule", "ref_id": str(rule.id), "data": None} for cid in acted])
        audit.record(session, "automation.fire", entity_type="automation_rule", entity_id=rule.id,
                     after={"action": kind, "customers": len(acted)}, actor=audit.Actor.system("automation"))
    return len(acted)


def _create_tasks(session: Session, rule: AutomationRule, rows: Sequence[Any]) -> list[int]:
    now = clock.now()
    due = now + timedelta(hours=int(rule.action.get("due_hours", 24)))
    items = [{"staff_id": r.owner_id, "customer_id": r.id, "title": _render(rule.action["title"], r)[:200],
              "due_at": due, "status": TaskStatus.OPEN, "source": f"rule:{rule.id}", "created_by_staff_id": None,
              "created_at": now} for r in rows if r.owner_id is not None]
    if items:
        session.execute(insert(WorkTask), items)
    return [i["customer_id"] for i in items]


def _supervisors_by_department(session: Session, department_ids: set[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    if department_ids:
        for sid, dept in session.execute(select(Staff.id, Staff.department_id).where(
                Staff.department_id.in_(department_ids), Staff.role == Role.SUPERVISOR,
                Staff.status == StaffStatus.ACTIVE).order_by(Staff.id)):
            out[dept].append(sid)
    return out


def _notify(session: Session, rule: AutomationRule, rows: Sequence[Any]) -> list[int]:
    action = rule.action
    target = action.get("target")
    recipients: dict[int, list[int]] = {}
    if target == "owner":
        recipients = {r.id: [r.owner_id] for r in rows if r.owner_id is not None}
    elif target == "staff":
        recipients = {r.id: [action["staff_id"]] for r in rows}
    elif target == "supervisor":
        # The owner's department; for a customer in a pool, the pool's department; else the rule's author's.
        owner_dept = dict(session.execute(select(Staff.id, Staff.department_id).where(
            Staff.id.in_({r.owner_id for r in rows if r.owner_id}))).all())
        pool_dept = dict(session.execute(select(Pool.id, Pool.department_id).where(
            Pool.id.in_({r.pool_id for r in rows if r.pool_id}))).all())
        author_dept = session.scalar(select(Staff.department_id).where(Staff.id == rule.created_by)) \
            if rule.created_by else None
        dept_of = {r.id: owner_dept.get(r.owner_id) or pool_dept.get(r.pool_id) or author_dept for r in rows}
        sups = _supervisors_by_department(session, {d for d in dept_of.values() if d})
        recipients = {cid: sups.get(dept, []) for cid, dept in dept_of.items() if dept}
    by_staff: dict[int, list[Any]] = defaultdict(list)
    row_of = {r.id: r for r in rows}
    for cid, staff_ids in recipients.items():
        for sid in staff_ids:
            by_staff[sid].append(row_of[cid])
    title, body = action.get("title") or rule.name, action.get("body") or ""
    messages = []
    for sid, mine in by_staff.items():
        if len(mine) > DIGEST_OVER:
            names = "、".join(customer_label(r.name, r.phone_masked, r.id) for r in mine[:10])
            messages.append((sid, "automation", f"{rule.name}：{len(mine)} 位客户",
                             f"{names}{' 等' if len(mine) > 10 else ''}。{body}", None))
        else:
            messages.extend((sid, "automation", _render(title, r), _render(body, r) or rule.name, r.id) for r in mine)
    notify_many(session, messages)
    return [cid for cid, staff_ids in recipients.items() if staff_ids]


def _set_grade(session: Session, rule: AutomationRule, rows: Sequence[Any], chain: Sequence[int]) -> list[int]:
    grade = rule.action["grade"]
    changing = [r for r in rows if r.grade != grade]
    if not changing:
        return []
    session.execute(update(Customer).where(Customer.id.in_([r.id for r in changing]))
                    .values(grade=grade, updated_at=clock.now()).execution_options(synchronize_session=False))
    next_chain = [*chain, rule.id]
    for r in changing:
        # The change is an event like any other, carrying the chain that caused it (the loop guard).
        outbox.enqueue(session, CHANGED_TASK, r.id, "grade", r.grade, grade, chain=next_chain)
    session.expire_all()
    return [r.id for r in changing]


def handle_change(session: Session, customer_id: int, field: str, old: object, new: object,
                  chain: Sequence[int] = ()) -> list[int]:
    """A customer's grade or stage changed: fire the matching event rules. Returns the rules fired."""
    trigger = EVENT_TRIGGERS.get(field)
    if trigger is None or len(chain) >= MAX_CHAIN:
        return []
    fired = []
    for rule in session.scalars(select(AutomationRule).where(AutomationRule.trigger == trigger,
                                                             AutomationRule.active.is_(True))
                                .order_by(AutomationRule.id)):
        if rule.id in chain:
            continue
        match = session.scalar(select(Customer.id).where(Customer.id == customer_id,
                                                         condition_clause(rule.conditions)))
        if match is None:
            continue
        key = f"{field}={new}@{clock.today().isoformat()}"
        if _claim(session, rule, [(customer_id, key)]) and _fire(session, rule, [customer_id], chain):
            fired.append(rule.id)
    return fired


def _stamp(instant: datetime) -> str:
    return clock.ensure_aware(instant).strftime("%Y%m%dT%H%M%S%f")


def scan_rule(session: Session, rule: AutomationRule) -> int:
    """One time rule, one query: the customers it applies to now, minus those it already fired for."""
    now = clock.now()
    since: ColumnElement[Any]
    if rule.trigger == "unassigned_for":
        since = type_coerce(func.coalesce(Customer.released_at, Customer.created_at), UTCDateTime())
        where = [Customer.status == CustomerStatus.POOL, since <= now - timedelta(hours=rule.trigger_value or 0)]
        prefix = "unassigned"
    elif rule.trigger == "no_followup_for":
        since = type_coerce(followup_clock(), UTCDateTime())
        where = [Customer.status == CustomerStatus.OWNED, since <= now - timedelta(days=rule.trigger_value or 0)]
        prefix = "nofollow"
    elif rule.trigger == "customer_created":
        since = Customer.created_at
        where = [Customer.created_at >= max(rule.created_at, now - CREATED_LOOKBACK)]
        prefix = "created"
    else:
        return 0
    # Skip customers already fired for in the current spell (a firing after the spell began); the
    # unique window key is the last word if two scans overlap.
    already = exists().where(AutomationFiring.rule_id == rule.id, AutomationFiring.customer_id == Customer.id,
                             AutomationFiring.fired_at > since)
    rows = session.execute(select(Customer.id, since).where(*where, ~already, condition_clause(rule.conditions))
                           .order_by(Customer.id).limit(SCAN_BATCH)).all()
    keyed = [(cid, "created" if prefix == "created" else f"{prefix}@{_stamp(at)}") for cid, at in rows]
    return _fire(session, rule, _claim(session, rule, keyed))


def scan(session: Session) -> dict[int, int]:
    """Every active time rule once; {rule id: customers acted on}."""
    out = {}
    for rule in session.scalars(select(AutomationRule).where(AutomationRule.trigger.in_(TIMED_TRIGGERS),
                                                             AutomationRule.active.is_(True))
                                .order_by(AutomationRule.id)):
        out[rule.id] = scan_rule(session, rule)
    return out
