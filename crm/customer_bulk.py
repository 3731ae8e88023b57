"""Bulk actions on selected customers (the console list's check boxes): set grade, blacklist.

Set-based: one SELECT decides which of the requested customers the viewer may touch (the rest are reported
as refused, never silently dropped), one conditional UPDATE changes them, and the owner history and
timeline rows go in with one INSERT each. Each customer's change is audit-logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from core import audit, clock, outbox, pii
from core.errors import ValidationFailed
from crm import customer_queries, customers
from crm.models import Customer, CustomerEvent, CustomerStatus, Grade, OwnerChange
from crm.scope import Viewer

MAX_BULK = 500
OUT_OF_SCOPE = "不存在或不在您的数据范围内"


@dataclass
class BulkResult:
    """What a bulk action did: ids changed, ids already in the asked state, ids refused with a reason."""

    done: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> int:
        return len(self.done) + len(self.unchanged)


def clean_ids(ids: list[int]) -> list[int]:
    unique = list(dict.fromkeys(int(i) for i in ids))
    if not unique:
        raise ValidationFailed("请先勾选客户", field="ids")
    if len(unique) > MAX_BULK:
        raise ValidationFailed(f"一次最多处理 {MAX_BULK} 位客户", field="ids")
    return unique


def _scoped(session: Session, viewer: Viewer, ids: list[int]) -> tuple[list[int], BulkResult]:
    allowed = customer_queries.visible_ids(session, viewer, ids)
    result = BulkResult(refused={i: OUT_OF_SCOPE for i in ids if i not in allowed})
    return [i for i in ids if i in allowed], result


def _events(session: Session, rows: list[dict[str, object]]) -> None:
    if rows:
        session.execute(insert(CustomerEvent), rows)


def bulk_set_grade(session: Session, viewer: Viewer, ids: list[int], grade: str | None) -> BulkResult:
    ids = clean_ids(ids)
    grade = (grade or "").strip() or None
    if grade and session.get(Grade, grade) is None:
        raise ValidationFailed(f"未知的客户等级：{grade}", field="grade")
    allowed, result = _scoped(session, viewer, ids)
    if not allowed:
        return result
    current = dict(session.execute(
        select(Customer.id, Customer.grade).where(Customer.id.in_(allowed)).with_for_update()).all())
    changing = [i for i in allowed if current.get(i) != grade]
    result.unchanged = [i for i in allowed if i not in changing]
    if not changing:
        return result
    now = clock.now()
    session.execute(update(Customer).where(Customer.id.in_(changing)).values(grade=grade, updated_at=now)
                    .execution_options(synchronize_session="fetch"))
    _events(session, [{"customer_id": i, "at": now, "kind": "grade", "actor_staff_id": viewer.staff_id,
                       "summary": f"等级 {current[i] or '-'} → {grade or '-'}（批量）", "data": {"bulk": True}}
                      for i in changing])
    for i in changing:
        audit.record(session, "customer.grade", entity_type="customer", entity_id=i,
                     before={"grade": current[i]}, after={"grade": grade}, detail="批量设置等级")
        outbox.enqueue(session, customers.CHANGED_TASK, i, "grade", current[i], grade)
    result.done = changing
    return result


def bulk_blacklist(session: Session, viewer: Viewer, ids: list[int], reason: str) -> BulkResult:
    """Blacklist the selected customers: out of every owner's and pool's hands, with the reason on record."""
    ids = clean_ids(ids)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("请填写拉黑原因", field="reason")
    reason = pii.mask_text(reason)[:200]
    allowed, result = _scoped(session, viewer, ids)
    if not allowed:
        return result
    rows = session.execute(select(Customer.id, Customer.status, Customer.owner_id, Customer.pool_id)
                           .where(Customer.id.in_(allowed)).with_for_update()).all()
    changing = [r for r in rows if r.status != CustomerStatus.BLACKLIST]
    changing_ids = [r.id for r in changing]
    result.unchanged = [i for i in allowed if i not in set(changing_ids)]
    if not changing:
        return result
    now = clock.now()
    # previous_owner_id keeps the last owner: COALESCE(owner_id, previous_owner_id), in the same statement.
    session.execute(
        update(Customer)
        .where(Customer.id.in_(changing_ids), Customer.status != CustomerStatus.BLACKLIST)
        .values(status=CustomerStatus.BLACKLIST, blacklist_reason=reason,
                previous_owner_id=func.coalesce(Customer.owner_id, Customer.previous_owner_id),
                owner_id=None, pool_id=None, updated_at=now)
        .execution_options(synchronize_session="fetch"))
    session.execute(insert(OwnerChange), [
        {"customer_id": r.id, "from_owner_id": r.owner_id, "to_owner_id": None, "from_pool_id": r.pool_id,
         "to_pool_id": None, "reason": "blacklist", "note": reason, "by_staff_id": viewer.staff_id, "at": now}
        for r in changing])
    _events(session, [{"customer_id": r.id, "at": now, "kind": "blacklist", "actor_staff_id": viewer.staff_id,
                       "summary": f"列入黑名单：{reason}"[:300], "data": {"bulk": True}} for r in changing])
    for r in changing:
        audit.record(session, "customer.blacklist", entity_type="customer", entity_id=r.id,
                     before={"status": r.status, "owner_id": r.owner_id},
                     after={"status": "blacklist", "reason": reason}, detail="批量拉黑")
    result.done = changing_ids
    return result
