"""Attribution (推荐归属): which referrer brought a customer. The first touch wins (one row per
customer, INSERT … ON CONFLICT DO NOTHING); a manager may attribute by hand only when there is none
yet or the lock window has passed. Self-referrals and loops are refused before anything is written.

The mini-program's scene handler and the WeCom channel-code handler call :func:`attribute`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import insert_ignore
from core.errors import NotFound
from crm.customers import record_event
from crm.models import Customer, Role
from crm.scope import Viewer
from referral import referrers
from referral.exceptions import (
    AttributionLocked,
    InvalidReferrer,
    NotAllowed,
    ReferralLoop,
    ReferrerDisabled,
    SelfReferral,
)
from referral.models import Attribution, AttributionSource, Referrer, ReferrerStatus

ATTRIBUTION_MANAGERS = frozenset({Role.ADMIN.value, Role.MANAGER.value})
SOURCE_LABELS = {"miniprogram": "小程序", "wecom": "企业微信", "manual": "手工"}


@dataclass(frozen=True)
class AttributionResult:
    attribution: Attribution
    created: bool  # False: the customer was already attributed (first touch wins), nothing changed


def check_referral(session: Session, customer_id: int, referrer: Referrer) -> None:
    """Refuse a self-referral, a loop (the customer is the referrer's upline, at any depth) or a
    disabled referrer. Writes nothing."""
    if referrer.status != ReferrerStatus.ACTIVE:
        raise ReferrerDisabled()
    if referrer.customer_id == customer_id:
        raise SelfReferral()
    own = session.scalar(select(Referrer.id).where(Referrer.customer_id == customer_id))
    if own is not None and (own == referrer.id or own in referrers.ancestors(session, referrer.id)):
        raise ReferralLoop()


def _customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("客户不存在", code="customer_not_found")
    return customer


def _link_parent(session: Session, customer_id: int, referrer_id: int, previous_id: int | None = None) -> None:
    """A customer who is (or becomes) a referrer hangs under whoever brought them."""
    own = session.scalar(select(Referrer).where(Referrer.customer_id == customer_id))
    if own is not None and own.parent_id in (None, previous_id) and own.id != referrer_id:
        own.parent_id = referrer_id
        session.flush()


def attribute(session: Session, customer_id: int, referrer_code_or_id: str | int, source: str = "miniprogram",
              at: datetime | None = None, *, viewer: Viewer | None = None, reason: str | None = None
              ) -> AttributionResult:
    """Record that ``referrer`` brought ``customer``. First touch wins: when an attribution exists
    the result says so and nothing changes. ``source="manual"`` is a manager's attribution: see
    :func:`reassign`."""
    if source not in set(AttributionSource):
        raise InvalidReferrer("归属来源不正确", code="invalid_attribution_source")
    referrer = referrers.resolve(session, referrer_code_or_id)
    _customer(session, customer_id)
    check_referral(session, customer_id, referrer)
    if source == AttributionSource.MANUAL:
        return reassign(session, customer_id, referrer.id, viewer=viewer, reason=reason, at=at)
    at = at or clock.now()
    new_id = insert_ignore(session, Attribution, {
        "customer_id": customer_id, "referrer_id": referrer.id, "source": source,
        "locked_until": at + referrers.lock_window(session), "created_at": at,
    }, ["customer_id"])
    attribution = session.scalar(select(Attribution).where(Attribution.customer_id == customer_id))
    if new_id is None:
        return AttributionResult(attribution, False)
    _link_parent(session, customer_id, referrer.id)
    record_event(session, customer_id, "referral.attributed",
                 f"推荐归属：{referrer.name}（{SOURCE_LABELS.get(source, source)}）", ref_type="referrer",
                 ref_id=referrer.id)
    return AttributionResult(attribution, True)


def reassign(session: Session, customer_id: int, referrer_id: int, *, viewer: Viewer | None = None,
             reason: str | None = None, at: datetime | None = None) -> AttributionResult:
    """A manager's attribution: allowed when none exists, or once the lock window has passed."""
    if viewer is not None and viewer.role not in ATTRIBUTION_MANAGERS:
        raise NotAllowed("只有经理或系统管理员可以手工指定推荐归属")
    referrer = referrers.get_referrer(session, referrer_id)
    _customer(session, customer_id)
    check_referral(session, customer_id, referrer)
    now = at or clock.now()
    window = referrers.lock_window(session)
    staff_id = viewer.staff_id if viewer else None
    previous = session.scalar(select(Attribution.referrer_id).where(Attribution.customer_id == customer_id))
    if previous is None:
        new_id = insert_ignore(session, Attribution, {
            "customer_id": customer_id, "referrer_id": referrer.id, "source": AttributionSource.MANUAL,
            "locked_until": now + window, "created_at": now, "changed_at": now, "changed_by_staff_id": staff_id,
        }, ["customer_id"])
        if new_id is None:
            raise AttributionLocked("该客户刚刚已被归属，请刷新后再试")
    else:
        if previous == referrer.id:
            raise AttributionLocked("该客户已归属此推荐人", code="attribution_unchanged")
        changed = session.execute(
            update(Attribution)
            .where(Attribution.customer_id == customer_id, Attribution.locked_until <= now,
                   Attribution.referrer_id == previous)
            .values(referrer_id=referrer.id, source=AttributionSource.MANUAL, locked_until=now + window,
                    changed_at=now, changed_by_staff_id=staff_id)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != 1:
            locked_until = session.scalar(select(Attribution.locked_until)
                                          .where(Attribution.customer_id == customer_id))
            until = clock.business_date(locked_until).isoformat() if locked_until else ""
            raise AttributionLocked(f"该客户的推荐归属锁定至 {until}，锁定期内不能改绑")
    _link_parent(session, customer_id, referrer.id, previous)
    attribution = session.scalar(select(Attribution).where(Attribution.customer_id == customer_id)
                                 .execution_options(populate_existing=True))
    audit.record(session, "referral.attribution.manual", entity_type="customer", entity_id=customer_id,
                 before={"referrer_id": previous}, after={"referrer_id": referrer.id}, detail=reason)
    record_event(session, customer_id, "referral.reattributed",
                 f"手工指定推荐归属：{referrer.name}" + (f"（{reason}）" if reason else ""),
                 actor_staff_id=staff_id, ref_type="referrer", ref_id=referrer.id)
    return AttributionResult(attribution, True)


def attribution_of(session: Session, customer_id: int) -> Attribution | None:
    return session.scalar(select(Attribution).where(Attribution.customer_id == customer_id))


def beneficiaries(session: Session, customer_id: int, max_levels: int | None = None) -> list[tuple[int, Referrer]]:
    """(level, referrer) pairs earning on this customer: the attributed referrer and, with two
    levels configured, its parent. Never deeper; disabled referrers earn nothing."""
    levels = max_levels or referrers.get_config(session).max_levels
    attribution = attribution_of(session, customer_id)
    if attribution is None:
        return []
    out: list[tuple[int, Referrer]] = []
    first = session.get(Referrer, attribution.referrer_id)
    if first is None:
        return out
    if first.status == ReferrerStatus.ACTIVE:
        out.append((1, first))
    if levels >= 2 and first.parent_id is not None:
        second = session.get(Referrer, first.parent_id)
        if second is not None and second.status == ReferrerStatus.ACTIVE and second.customer_id != customer_id:
            out.append((2, second))
    return out


def list_attributions(session: Session, viewer: Viewer, *, referrer_id: int | None = None, limit: int = 200
                      ) -> list[tuple[Attribution, Customer, Referrer]]:
    """Recent attributions of customers the viewer may see (their data scope)."""
    from crm.customers import visible_clause

    stmt = (select(Attribution, Customer, Referrer).join(Customer, Customer.id == Attribution.customer_id)
            .join(Referrer, Referrer.id == Attribution.referrer_id).where(visible_clause(viewer))
            .order_by(Attribution.id.desc()).limit(limit))
    if referrer_id is not None:
        stmt = stmt.where(Attribution.referrer_id == referrer_id)
    return [(a, c, r) for a, c, r in session.execute(stmt).all()]
