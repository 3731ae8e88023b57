"""Where customers land in the public pools (公海): the default pool, a person's home pool, a pool's
settings. Plain lookups with no rules of their own, shared by customer intake (``crm.customers``)
and the pool service (``crm.pool_service``), so neither has to import the other.
"""

from __future__ import annotations

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from core import clock
from crm.models import Department, Pool, PoolSetting, Staff


def default_pool(session: Session) -> Pool:
    pool = session.scalar(select(Pool).where(Pool.is_default.is_(True)).limit(1))
    if pool is None:
        pool = Pool(name="公共公海", is_default=True, created_at=clock.now())
        session.add(pool)
        session.flush()
    return pool


def settings_for(session: Session, pool_id: int) -> PoolSetting:
    """The pool's settings (an unsaved row with the defaults when none was ever saved)."""
    row = session.get(PoolSetting, pool_id)
    if row is None:
        row = PoolSetting(pool_id=pool_id, daily_claim_cap=20, check_private_cap=True, cooldown_days=7,
                          protection_days=3, updated_at=clock.now())
    return row


def home_pool_id(session: Session, staff_id: int | None) -> int:
    """Where a person's released customers go: the pool of the nearest department at or above
    theirs, else the default pool."""
    if staff_id is not None:
        path = session.scalar(select(Department.path).join(Staff, Staff.department_id == Department.id)
                              .where(Staff.id == staff_id))
        if path:
            pool_id = session.scalar(
                select(Pool.id).join(Department, Department.id == Pool.department_id)
                .where(literal(path).startswith(Department.path))
                .order_by(func.length(Department.path).desc(), Pool.id).limit(1))
            if pool_id is not None:
                return pool_id
    return default_pool(session).id
