"""The commission ledger (佣金流水): append-only entries in signed integer fen; balances are queries.

Lifecycle of an accrual, all as new rows (nothing is ever updated):
  accrued (+x, pending) ── confirmed (moves x to available: clawback window over, or fee collected)
        └─ reversed (−x, once: refund, void, cancellation; from whichever bucket the accrual is in)
  available ── paid (−) and deduction (−, tax and fees) at payout.

Balances:
  total     = Σ amount of accrued, reversed, paid, deduction (confirmed rows move money, they add none)
  available = Σ confirmed, paid, deduction + Σ reversals of confirmed accruals
  pending   = total − available

Every write for a beneficiary first locks its referrer row; a source event accrues once
(``source_event_key`` unique, INSERT … ON CONFLICT DO NOTHING), whatever re-deliveries or workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import String, and_, case, cast, exists, func, literal, select
from sqlalchemy.orm import Session, aliased

from core import clock
from core.db import insert_ignore, is_postgres
from core.money import format_yuan
from crm import customers
from crm.models import Customer, Staff
from referral import attribution, referrers, rules
from referral.exceptions import AlreadyReversed, EntryNotFound, NotReversible
from referral.models import (
    OPEN_WITHDRAWAL,
    Basis,
    BeneficiaryKind,
    BountyEvent,
    CommissionEntry,
    CommissionRuleVersion,
    EntryKind,
    Referrer,
    WithdrawalRequest,
)

E = CommissionEntry


@dataclass(frozen=True)
class Disbursement:
    """What the ledger needs to know of a disbursed loan (lending's Loan is adapted into this)."""

    loan_id: int
    customer_id: int
    product_id: int | None
    funder_type: str | None
    principal_fen: int
    service_fee_fen: int
    disbursed_at: datetime


@dataclass(frozen=True)
class Balance:
    total: int = 0  # earned, net of reversals, payouts and deductions
    available: int = 0  # confirmed and not yet paid (may be negative after a refund post payout)
    pending: int = 0  # accrued, clawback window still open
    held: int = 0  # open withdrawal requests
    accrued: int = 0
    reversed: int = 0
    paid: int = 0
    deducted: int = 0

    @property
    def withdrawable(self) -> int:
        return max(0, self.available - self.held)


# --- months (Asia/Shanghai) -------------------------------------------------------------------

def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def month_bounds(instant_or_day: datetime | date) -> tuple[datetime, datetime]:
    """UTC instants [start, end) of the Shanghai calendar month containing the argument."""
    day = clock.business_date(instant_or_day) if isinstance(instant_or_day, datetime) else instant_or_day
    first = month_start(day)
    return clock.start_of_business_day(first), clock.start_of_business_day(next_month(first))


# --- writing ------------------------------------------------------------------------------------

def _insert(session: Session, **values: object) -> int | None:
    values.setdefault("created_at", clock.now())
    return insert_ignore(session, E, values, ["source_event_key"])


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _reversed_exists(entry_id_column):  # noqa: ANN001, ANN202 - a SQL clause
    r = aliased(E)
    return exists().where(r.reverses_entry_id == entry_id_column)


def _monthly_volume(session: Session, referrer_id: int, rule_id: int, level: int, start: datetime,
                    end: datetime) -> int:
    """Basis accrued this month for this beneficiary, rule and level, reversed accruals excluded."""
    return int(session.scalar(
        select(func.coalesce(func.sum(E.basis_amount), 0))
        .join(CommissionRuleVersion, CommissionRuleVersion.id == E.rule_version_id)
        .where(E.referrer_id == referrer_id, E.kind == EntryKind.ACCRUED, E.level == level,
               CommissionRuleVersion.rule_id == rule_id, E.event_at >= start, E.event_at < end,
               ~_reversed_exists(E.id))) or 0)


def _monthly_used(session: Session, referrer_id: int, rule_id: int, start: datetime, end: datetime) -> int:
    """Commission already accrued this month under this rule, net of its reversals."""
    r = aliased(E)
    accrued = session.scalar(
        select(func.coalesce(func.sum(E.amount), 0))
        .join(CommissionRuleVersion, CommissionRuleVersion.id == E.rule_version_id)
        .where(E.referrer_id == referrer_id, E.kind == EntryKind.ACCRUED, CommissionRuleVersion.rule_id == rule_id,
               E.event_at >= start, E.event_at < end)) or 0
    reversed_ = session.scalar(
        select(func.coalesce(func.sum(r.amount), 0))
        .join(E, E.id == r.reverses_entry_id)
        .join(CommissionRuleVersion, CommissionRuleVersion.id == E.rule_version_id)
        .where(E.referrer_id == referrer_id, CommissionRuleVersion.rule_id == rule_id,
               E.event_at >= start, E.event_at < end)) or 0
    return int(accrued) + int(reversed_)


def _amount_for(session: Session, version: CommissionRuleVersion, level: int, beneficiary_id: int,
                basis_amount: int, event_at: datetime) -> tuple[int, str | None]:
    """(amount, note) of one accrual after tiers and caps."""
    start, end = month_bounds(event_at)
    if version.basis == Basis.BOUNTY:
        amount = version.level1_bounty_amount if level == 1 else version.level2_bounty_amount
    else:
        volume = basis_amount
        if version.tiers:
            volume += _monthly_volume(session, beneficiary_id, version.rule_id, level, start, end)
        amount = _round(Decimal(basis_amount) * rules.rate_for(version, level, volume))
    note = None
    if version.per_loan_cap_amount is not None and amount > version.per_loan_cap_amount:
        amount, note = version.per_loan_cap_amount, "已按单笔封顶"
    if version.monthly_cap_amount is not None:
        room = max(0, version.monthly_cap_amount - _monthly_used(session, beneficiary_id, version.rule_id,
                                                                 start, end))
        if amount > room:
            amount, note = room, "已按月度封顶"
    return amount, note


def _accrue(session: Session, *, key: str, version: CommissionRuleVersion, level: int, beneficiary: Referrer,
            basis_amount: int, event_at: datetime, loan_id: int | None, product_id: int | None,
            customer_id: int | None, confirm_now: bool) -> int | None:
    amount, note = _amount_for(session, version, level, beneficiary.id, basis_amount, event_at)
    if amount <= 0 and note is None:
        return None  # nothing earned (no tier, zero rate): no row
    entry_id = _insert(session, referrer_id=beneficiary.id, kind=EntryKind.ACCRUED, amount=amount,
                       source_event_key=key, level=level, basis_amount=basis_amount, rule_version_id=version.id,
                       loan_id=loan_id, product_id=product_id, customer_id=customer_id, event_at=event_at,
                       confirmable_at=event_at + timedelta(days=version.clawback_days), note=note)
    if entry_id is not None and customer_id is not None:
        state = "已确认" if confirm_now else "待确认"
        customers.record_event(session, customer_id, "commission.accrued",
                               f"佣金计提：{beneficiary.name} {format_yuan(amount)}（第 {level} 级，{state}）",
                               ref_type="commission_entry", ref_id=entry_id)
    if entry_id is not None and confirm_now:
        _insert(session, referrer_id=beneficiary.id, kind=EntryKind.CONFIRMED, amount=amount,
                source_event_key=f"confirm:{entry_id}", confirms_entry_id=entry_id, level=level,
                rule_version_id=version.id, loan_id=loan_id, product_id=product_id, customer_id=customer_id,
                event_at=event_at, note="服务费已收取")
    return entry_id


def _staff_beneficiary(session: Session, customer_id: int) -> tuple[Referrer, Staff] | None:
    """The customer's salesperson as a beneficiary, when any staff scheme is active (the staff
    referrer row is created on first need, never for nothing)."""
    from referral.models import CommissionRule

    if session.scalar(select(CommissionRule.id).where(CommissionRule.active.is_(True),
                                                      CommissionRule.beneficiary_kind == BeneficiaryKind.STAFF)
                      .limit(1)) is None:
        return None
    owner_id = session.scalar(select(Customer.owner_id).where(Customer.id == customer_id))
    staff = session.get(Staff, owner_id) if owner_id else None
    if staff is None:
        return None
    return referrers.ensure_staff_referrer(session, staff.id), staff


def _lock_all(session: Session, referrer_ids: list[int]) -> None:
    for referrer_id in sorted(set(referrer_ids)):  # one order everywhere: no deadlock between workers
        referrers.lock_referrer(session, referrer_id)


def accrue_for_disbursement(session: Session, *, loan_id: int, customer_id: int, product_id: int | None,
                            funder_type: str | None, principal_fen: int, service_fee_fen: int = 0,
                            disbursed_at: datetime | None = None) -> list[int]:
    """Accrue every commission a disbursed loan earns; ids of the entries written by this call.

    Referrer rules pay the attributed referrer (level 1) and its parent (level 2, when configured);
    staff schemes pay the customer's salesperson. Principal-based accruals wait for the clawback
    window; a service fee collected at disbursement accrues and confirms at once. Re-running it for
    the same loan writes nothing.
    """
    at = disbursed_at or clock.now()
    loan = Disbursement(loan_id, customer_id, product_id, funder_type, principal_fen, service_fee_fen, at)
    chain = attribution.beneficiaries(session, customer_id)
    staff_pair = _staff_beneficiary(session, customer_id)
    _lock_all(session, [r.id for _, r in chain] + ([staff_pair[0].id] if staff_pair else []))
    written: list[int] = []

    def run(kind: str, pairs: list[tuple[int, Referrer]], ref_kind: str | None, staff_level: int | None) -> None:
        for basis, event, basis_amount, confirm in (
            (Basis.PRINCIPAL, None, loan.principal_fen, False),
            (Basis.BOUNTY, BountyEvent.DISBURSEMENT, loan.principal_fen, False),
            (Basis.SERVICE_FEE, None, loan.service_fee_fen, True),
        ):
            if basis == Basis.SERVICE_FEE and basis_amount <= 0:
                continue
            for version in rules.matching_versions(
                    session, beneficiary_kind=kind, basis=basis, product_id=loan.product_id,
                    funder_type=loan.funder_type, referrer_kind=ref_kind, staff_level=staff_level,
                    bounty_event=event):
                prefix = "service_fee" if basis == Basis.SERVICE_FEE else "loan_disbursed"
                for level, beneficiary in pairs:
                    key = f"{prefix}:{loan.loan_id}:{version.id}:{level}"
                    entry_id = _accrue(session, key=key, version=version, level=level, beneficiary=beneficiary,
                                       basis_amount=basis_amount, event_at=loan.disbursed_at, loan_id=loan.loan_id,
                                       product_id=loan.product_id, customer_id=loan.customer_id,
                                       confirm_now=confirm)
                    if entry_id is not None:
                        written.append(entry_id)

    if chain:
        run(BeneficiaryKind.REFERRER, chain, chain[0][1].kind if chain[0][0] == 1 else None, None)
    if staff_pair is not None:
        run(BeneficiaryKind.STAFF, [(1, staff_pair[0])], None, staff_pair[1].level)
    return written


def record_service_fee_collected(session: Session, *, loan_id: int, customer_id: int, product_id: int | None,
                                 funder_type: str | None, fee_fen: int, collected_at: datetime | None = None,
                                 collection_key: str) -> list[int]:
    """A service fee collected after disbursement: service-fee rules accrue and confirm at once.
    ``collection_key`` names the collection (e.g. a payment id) so a re-delivery writes nothing."""
    at = collected_at or clock.now()
    chain = attribution.beneficiaries(session, customer_id)
    staff_pair = _staff_beneficiary(session, customer_id)
    _lock_all(session, [r.id for _, r in chain] + ([staff_pair[0].id] if staff_pair else []))
    written: list[int] = []
    groups = []
    if chain:
        groups.append((BeneficiaryKind.REFERRER, chain, chain[0][1].kind, None))
    if staff_pair:
        groups.append((BeneficiaryKind.STAFF, [(1, staff_pair[0])], None, staff_pair[1].level))
    for kind, pairs, ref_kind, staff_level in groups:
        for version in rules.matching_versions(session, beneficiary_kind=kind, basis=Basis.SERVICE_FEE,
                                               product_id=product_id, funder_type=funder_type,
                                               referrer_kind=ref_kind, staff_level=staff_level):
            for level, beneficiary in pairs:
                entry_id = _accrue(session, key=f"fee_collected:{collection_key}:{version.id}:{level}",
                                   version=version, level=level, beneficiary=beneficiary, basis_amount=fee_fen,
                                   event_at=at, loan_id=loan_id, product_id=product_id, customer_id=customer_id,
                                   confirm_now=True)
                if entry_id is not None:
                    written.append(entry_id)
    return written


def accrue_bounty(session: Session, *, event: str, customer_id: int, event_key: str, at: datetime | None = None,
                  product_id: int | None = None, funder_type: str | None = None) -> list[int]:
    """A fixed bounty for first application or visit (``event_key`` e.g. "application:42").
    Confirmed after the rule's clawback window like any accrual."""
    at = at or clock.now()
    chain = attribution.beneficiaries(session, customer_id)
    if not chain:
        return []
    _lock_all(session, [r.id for _, r in chain])
    written = []
    for version in rules.matching_versions(session, beneficiary_kind=BeneficiaryKind.REFERRER, basis=Basis.BOUNTY,
                                           product_id=product_id, funder_type=funder_type,
                                           referrer_kind=chain[0][1].kind, bounty_event=event):
        for level, beneficiary in chain:
            entry_id = _accrue(session, key=f"bounty:{event}:{event_key}:{version.id}:{level}", version=version,
                               level=level, beneficiary=beneficiary, basis_amount=0, event_at=at, loan_id=None,
                               product_id=product_id, customer_id=customer_id, confirm_now=False)
            if entry_id is not None:
                written.append(entry_id)
    return written


def confirm_due(session: Session, now: datetime | None = None) -> int:
    """Confirm every accrual whose clawback window has ended and that was not reversed: one
    INSERT … SELECT … ON CONFLICT DO NOTHING (safe to run twice, or on two workers)."""
    now = now or clock.now()
    a = aliased(E)
    c = aliased(E)
    r = aliased(E)
    table = E.__table__
    sel = (select(a.referrer_id, literal(EntryKind.CONFIRMED.value), a.amount,
                  literal("confirm:").concat(cast(a.id, String)), a.id, a.level, a.rule_version_id, a.loan_id,
                  a.product_id, a.customer_id, a.event_at, literal(now, type_=E.__table__.c.created_at.type))
           .where(a.kind == EntryKind.ACCRUED, a.confirmable_at <= now,
                  ~exists().where(c.confirms_entry_id == a.id), ~exists().where(r.reverses_entry_id == a.id)))
    cols = ["referrer_id", "kind", "amount", "source_event_key", "confirms_entry_id", "level", "rule_version_id",
            "loan_id", "product_id", "customer_id", "event_at", "created_at"]
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    result = session.execute(insert(table).from_select(cols, sel).on_conflict_do_nothing())
    return max(0, result.rowcount or 0)


def reverse_entry(session: Session, entry_id: int, reason: str, *, event_key: str | None = None) -> int:
    """Reverse one accrual (refund, void, cancellation). A reversed accrual cannot be reversed again."""
    entry = session.get(E, entry_id)
    if entry is None:
        raise EntryNotFound()
    if entry.kind != EntryKind.ACCRUED:
        raise NotReversible()
    referrers.lock_referrer(session, entry.referrer_id)
    new_id = insert_ignore(session, E, {
        "referrer_id": entry.referrer_id, "kind": EntryKind.REVERSED, "amount": -entry.amount,
        "source_event_key": event_key or f"reverse:{entry.id}", "reverses_entry_id": entry.id,
        "level": entry.level, "rule_version_id": entry.rule_version_id, "loan_id": entry.loan_id,
        "product_id": entry.product_id, "customer_id": entry.customer_id, "event_at": clock.now(),
        "note": (reason or "")[:200] or None, "created_at": clock.now(),
    }, ["reverses_entry_id"])
    if new_id is None:
        raise AlreadyReversed()
    if entry.customer_id is not None:
        name = session.scalar(select(Referrer.name).where(Referrer.id == entry.referrer_id))
        customers.record_event(session, entry.customer_id, "commission.reversed",
                               f"佣金冲回：{name} {format_yuan(-entry.amount)}" + (f"（{reason}）" if reason else ""),
                               ref_type="commission_entry", ref_id=new_id)
    return new_id


def reverse_for_loan(session: Session, loan_id: int, reason: str) -> list[int]:
    """Reverse every not-yet-reversed accrual of a loan (all beneficiaries). Idempotent."""
    ids = list(session.scalars(select(E.id).where(E.loan_id == loan_id, E.kind == EntryKind.ACCRUED,
                                                  ~_reversed_exists(E.id)).order_by(E.referrer_id, E.id)))
    written = []
    for entry_id in ids:
        try:
            with session.begin_nested():
                written.append(reverse_entry(session, entry_id, reason))
        except AlreadyReversed:
            continue
    return written


def reverse_for_collection(session: Session, key_prefix: str, reason: str) -> list[int]:
    """Reverse every not-yet-reversed accrual whose collection key starts with ``key_prefix`` (e.g. one
    finance settlement's fees: ``finance:settlement:12:``). Idempotent."""
    pattern = f"fee_collected:{key_prefix}".replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    ids = list(session.scalars(select(E.id).where(E.source_event_key.like(pattern, escape="\\"),
                                                  E.kind == EntryKind.ACCRUED, ~_reversed_exists(E.id))
                               .order_by(E.referrer_id, E.id)))
    written = []
    for entry_id in ids:
        try:
            with session.begin_nested():
                written.append(reverse_entry(session, entry_id, reason))
        except AlreadyReversed:
            continue
    return written


# --- reading -----------------------------------------------------------------------------------

def _confirmed_target():  # noqa: ANN202 - a SQL clause: this reversal's accrual was confirmed
    c = aliased(E)
    return exists().where(c.confirms_entry_id == E.reverses_entry_id, c.kind == EntryKind.CONFIRMED)


def balance_rows(session: Session, referrer_ids: list[int] | None = None, *, until: datetime | None = None):  # noqa: ANN201
    def total_of(*kinds: str):  # noqa: ANN202
        return func.coalesce(func.sum(case((E.kind.in_(kinds), E.amount), else_=0)), 0)

    available = func.coalesce(func.sum(case(
        (E.kind.in_((EntryKind.CONFIRMED, EntryKind.PAID, EntryKind.DEDUCTION)), E.amount),
        (and_(E.kind == EntryKind.REVERSED, _confirmed_target()), E.amount), else_=0)), 0)
    stmt = select(E.referrer_id, total_of(EntryKind.ACCRUED, EntryKind.REVERSED, EntryKind.PAID, EntryKind.DEDUCTION),
                  available, total_of(EntryKind.ACCRUED), total_of(EntryKind.REVERSED), total_of(EntryKind.PAID),
                  total_of(EntryKind.DEDUCTION)).group_by(E.referrer_id)
    if referrer_ids is not None:
        stmt = stmt.where(E.referrer_id.in_(referrer_ids))
    if until is not None:
        stmt = stmt.where(E.created_at < until)
    return session.execute(stmt).all()


def balances(session: Session, referrer_ids: list[int] | None = None) -> dict[int, Balance]:
    held_stmt = (select(WithdrawalRequest.referrer_id, func.sum(WithdrawalRequest.amount))
                 .where(WithdrawalRequest.status.in_(OPEN_WITHDRAWAL)).group_by(WithdrawalRequest.referrer_id))
    if referrer_ids is not None:
        held_stmt = held_stmt.where(WithdrawalRequest.referrer_id.in_(referrer_ids))
    held = {rid: int(amount) for rid, amount in session.execute(held_stmt)}
    out: dict[int, Balance] = {}
    for rid, total, avail, accrued, reversed_, paid, deducted in balance_rows(session, referrer_ids):
        total, avail = int(total), int(avail)
        out[rid] = Balance(total=total, available=avail, pending=total - avail, held=held.get(rid, 0),
                           accrued=int(accrued), reversed=int(reversed_), paid=int(paid), deducted=int(deducted))
    for rid, amount in held.items():
        out.setdefault(rid, Balance(held=amount))
    return out


def balance(session: Session, referrer_id: int) -> Balance:
    return balances(session, [referrer_id]).get(referrer_id, Balance())


def entries(session: Session, referrer_id: int, *, limit: int = 200, offset: int = 0) -> list[CommissionEntry]:
    return list(session.scalars(select(E).where(E.referrer_id == referrer_id).order_by(E.id.desc())
                                .limit(limit).offset(offset)))


def state_of(session: Session, entry_id: int) -> str:
    """The derived state of an accrual: accrued, confirmed, reversed or paid-out (available, then paid)."""
    if session.scalar(select(E.id).where(E.reverses_entry_id == entry_id)) is not None:
        return EntryKind.REVERSED
    if session.scalar(select(E.id).where(E.confirms_entry_id == entry_id)) is not None:
        return EntryKind.CONFIRMED
    return EntryKind.ACCRUED
