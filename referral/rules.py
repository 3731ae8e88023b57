"""Commission rules (佣金规则) and staff commission schemes (佣金方案), one engine.

A rule names who earns (referrers by level, or the customer's salesperson) and carries immutable
versions: the scope (product, funder type, referrer kind, staff level), the basis (rate on the
disbursed principal, rate on the service fee actually collected, or a fixed bounty for an event),
tiers by monthly volume (non-overlapping), caps per loan and per month, and the clawback window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit, clock
from referral.exceptions import InvalidRule, OverlappingTiers, RuleNotFound
from referral.models import (
    Basis,
    BeneficiaryKind,
    BountyEvent,
    CommissionRule,
    CommissionRuleVersion,
    ReferrerKind,
)

BASIS_LABELS = {"principal": "放款本金 × 比例", "service_fee": "实收服务费 × 比例", "bounty": "固定奖励"}
EVENT_LABELS = {"first_application": "首次进件", "visit": "上门", "disbursement": "放款"}
BENEFICIARY_LABELS = {"referrer": "推荐人", "staff": "员工（佣金方案）"}


@dataclass(frozen=True)
class Tier:
    min_amount: int
    max_amount: int | None
    level1_rate: Decimal
    level2_rate: Decimal

    def contains(self, volume: int) -> bool:
        return volume >= self.min_amount and (self.max_amount is None or volume < self.max_amount)

    def as_json(self) -> dict[str, Any]:
        return {"min_amount": self.min_amount, "max_amount": self.max_amount,
                "level1_rate": str(self.level1_rate), "level2_rate": str(self.level2_rate)}


@dataclass
class RuleTerms:
    basis: str
    bounty_event: str | None = None
    product_id: int | None = None
    funder_type: str | None = None
    referrer_kind: str | None = None
    staff_level: int | None = None
    level1_rate: Decimal | str = Decimal(0)
    level2_rate: Decimal | str = Decimal(0)
    level1_bounty_amount: int = 0
    level2_bounty_amount: int = 0
    tiers: list[dict[str, Any]] = field(default_factory=list)
    per_loan_cap_amount: int | None = None
    monthly_cap_amount: int | None = None
    clawback_days: int = 30
    note: str | None = None


def _rate(value: object, label: str) -> Decimal:
    if isinstance(value, float):
        raise InvalidRule(f"{label}不能是浮点数，请用小数字符串")
    try:
        text = str(value).strip() if value is not None else "0"
        rate = Decimal(text[:-1]) / 100 if text.endswith("%") else Decimal(text or "0")
    except InvalidOperation as exc:
        raise InvalidRule(f"{label}格式不正确：{value}") from exc
    if not rate.is_finite() or rate < 0 or rate > 1:
        raise InvalidRule(f"{label}须在 0 到 100% 之间")
    return rate


def _amount(value: object, label: str, *, allow_none: bool = False) -> int | None:
    if value is None or value == "":
        if allow_none:
            return None
        raise InvalidRule(f"请填写{label}")
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value))
        except ValueError as exc:
            raise InvalidRule(f"{label}须为整数（分）") from exc
    if value < 0:
        raise InvalidRule(f"{label}不能为负数")
    return value


def parse_tiers(rows: list[dict[str, Any]]) -> list[Tier]:
    """Tiers sorted by lower bound; overlapping tiers are refused with the pair that overlaps."""
    tiers = []
    for i, row in enumerate(rows, start=1):
        low = _amount(row.get("min_amount", 0), f"第 {i} 档下限")
        high = _amount(row.get("max_amount"), f"第 {i} 档上限", allow_none=True)
        if high is not None and high <= low:  # type: ignore[operator]
            raise InvalidRule(f"第 {i} 档的上限必须大于下限")
        tiers.append(Tier(low, high, _rate(row.get("level1_rate"), f"第 {i} 档一级比例"),  # type: ignore[arg-type]
                          _rate(row.get("level2_rate", "0"), f"第 {i} 档二级比例")))
    tiers.sort(key=lambda t: t.min_amount)
    for a, b in zip(tiers, tiers[1:], strict=False):
        if a.max_amount is None or b.min_amount < a.max_amount:
            raise OverlappingTiers(
                f"阶梯区间重叠：[{_yuan(a.min_amount)}, {_yuan(a.max_amount)}) 与 "
                f"[{_yuan(b.min_amount)}, {_yuan(b.max_amount)})", low=b.min_amount)
    return tiers


def _yuan(fen: int | None) -> str:
    from core.money import format_yuan

    return "∞" if fen is None else format_yuan(fen)


def validate_terms(beneficiary_kind: str, terms: RuleTerms) -> dict[str, Any]:
    """Checked terms as column values; raises InvalidRule with the reason."""
    if beneficiary_kind not in set(BeneficiaryKind):
        raise InvalidRule("受益人类型不正确")
    if terms.basis not in set(Basis):
        raise InvalidRule("计佣基数不正确")
    event = terms.bounty_event or None
    if terms.basis == Basis.BOUNTY:
        if event not in set(BountyEvent):
            raise InvalidRule("固定奖励需要选择触发事件（首次进件、上门或放款）")
    else:
        event = None
    if terms.referrer_kind and terms.referrer_kind not in set(ReferrerKind):
        raise InvalidRule("推荐人类型不正确")
    tiers = parse_tiers(terms.tiers or [])
    if tiers and terms.basis == Basis.BOUNTY:
        raise InvalidRule("固定奖励不分阶梯")
    clawback = _amount(terms.clawback_days, "冲回观察期（天）")
    return {
        "basis": terms.basis, "bounty_event": event, "product_id": terms.product_id,
        "funder_type": terms.funder_type or None,
        "referrer_kind": (terms.referrer_kind or None) if beneficiary_kind == BeneficiaryKind.REFERRER else None,
        "staff_level": terms.staff_level if beneficiary_kind == BeneficiaryKind.STAFF else None,
        "level1_rate": _rate(terms.level1_rate, "一级比例"),
        "level2_rate": _rate(terms.level2_rate, "二级比例") if beneficiary_kind == BeneficiaryKind.REFERRER
        else Decimal(0),
        "level1_bounty_amount": _amount(terms.level1_bounty_amount or 0, "一级奖励金额"),
        "level2_bounty_amount": _amount(terms.level2_bounty_amount or 0, "二级奖励金额"),
        "tiers": [t.as_json() for t in tiers] or None,
        "per_loan_cap_amount": _amount(terms.per_loan_cap_amount, "单笔封顶", allow_none=True),
        "monthly_cap_amount": _amount(terms.monthly_cap_amount, "月度封顶", allow_none=True),
        "clawback_days": clawback, "note": (terms.note or "").strip()[:200] or None,
    }


def create_rule(session: Session, name: str, beneficiary_kind: str, terms: RuleTerms, *,
                staff_id: int | None = None) -> CommissionRule:
    name = (name or "").strip()
    if not name:
        raise InvalidRule("请填写规则名称")
    values = validate_terms(beneficiary_kind, terms)
    if session.scalar(select(CommissionRule.id).where(CommissionRule.name == name)) is not None:
        raise InvalidRule(f"规则名称「{name}」已存在", code="rule_name_taken")
    now = clock.now()
    rule = CommissionRule(name=name[:60], beneficiary_kind=beneficiary_kind, active=True, created_at=now,
                          updated_at=now)
    session.add(rule)
    session.flush()
    _add_version(session, rule, values, staff_id)
    audit.record(session, "referral.rule.create", entity_type="commission_rule", entity_id=rule.id,
                 after={"name": rule.name, "beneficiary_kind": beneficiary_kind, "basis": values["basis"]})
    return rule


def _add_version(session: Session, rule: CommissionRule, values: dict[str, Any], staff_id: int | None
                 ) -> CommissionRuleVersion:
    number = (session.scalar(select(func.max(CommissionRuleVersion.version))
                             .where(CommissionRuleVersion.rule_id == rule.id)) or 0) + 1
    version = CommissionRuleVersion(rule_id=rule.id, version=number, created_by_staff_id=staff_id,
                                    created_at=clock.now(), **values)
    session.add(version)
    session.flush()
    rule.current_version_id = version.id
    rule.updated_at = clock.now()
    session.flush()
    return version


def new_version(session: Session, rule_id: int, terms: RuleTerms, *, staff_id: int | None = None
                ) -> CommissionRuleVersion:
    """An edit: a new immutable version becomes current; entries keep pointing at the one they used."""
    rule = session.scalar(select(CommissionRule).where(CommissionRule.id == rule_id).with_for_update())
    if rule is None:
        raise RuleNotFound()
    values = validate_terms(rule.beneficiary_kind, terms)
    version = _add_version(session, rule, values, staff_id)
    audit.record(session, "referral.rule.version", entity_type="commission_rule", entity_id=rule.id,
                 after={"version": version.version, "basis": version.basis})
    return version


def set_active(session: Session, rule_id: int, active: bool) -> CommissionRule:
    rule = session.get(CommissionRule, rule_id)
    if rule is None:
        raise RuleNotFound()
    rule.active = active
    rule.updated_at = clock.now()
    session.flush()
    audit.record(session, "referral.rule.active", entity_type="commission_rule", entity_id=rule.id,
                 after={"active": active})
    return rule


def terms_of(version: CommissionRuleVersion) -> RuleTerms:
    return RuleTerms(
        basis=version.basis, bounty_event=version.bounty_event, product_id=version.product_id,
        funder_type=version.funder_type, referrer_kind=version.referrer_kind, staff_level=version.staff_level,
        level1_rate=version.level1_rate, level2_rate=version.level2_rate,
        level1_bounty_amount=version.level1_bounty_amount, level2_bounty_amount=version.level2_bounty_amount,
        tiers=list(version.tiers or []), per_loan_cap_amount=version.per_loan_cap_amount,
        monthly_cap_amount=version.monthly_cap_amount, clawback_days=version.clawback_days, note=version.note)


def list_rules(session: Session) -> list[tuple[CommissionRule, CommissionRuleVersion | None]]:
    rows = session.execute(
        select(CommissionRule, CommissionRuleVersion)
        .outerjoin(CommissionRuleVersion, CommissionRuleVersion.id == CommissionRule.current_version_id)
        .order_by(CommissionRule.id)).all()
    return [(r, v) for r, v in rows]


def versions(session: Session, rule_id: int) -> list[CommissionRuleVersion]:
    return list(session.scalars(select(CommissionRuleVersion).where(CommissionRuleVersion.rule_id == rule_id)
                                .order_by(CommissionRuleVersion.version.desc())))


def _specificity(v: CommissionRuleVersion) -> int:
    return (4 if v.product_id is not None else 0) + (2 if v.funder_type else 0) + (
        1 if (v.referrer_kind or v.staff_level is not None) else 0)


def matching_versions(session: Session, *, beneficiary_kind: str, basis: str, product_id: int | None,
                      funder_type: str | None, referrer_kind: str | None = None, staff_level: int | None = None,
                      bounty_event: str | None = None) -> list[CommissionRuleVersion]:
    """The current versions of active rules that apply. Of several that apply, the most specific wins
    (product over funder type over general; ties to the oldest rule): one rule per basis."""
    stmt = (select(CommissionRuleVersion)
            .join(CommissionRule, CommissionRule.current_version_id == CommissionRuleVersion.id)
            .where(CommissionRule.active.is_(True), CommissionRule.beneficiary_kind == beneficiary_kind,
                   CommissionRuleVersion.basis == basis)
            .order_by(CommissionRule.id))
    if basis == Basis.BOUNTY:
        stmt = stmt.where(CommissionRuleVersion.bounty_event == bounty_event)
    candidates = [
        v for v in session.scalars(stmt)
        if (v.product_id is None or v.product_id == product_id)
        and (v.funder_type is None or v.funder_type == funder_type)
        and (v.referrer_kind is None or v.referrer_kind == referrer_kind)
        and (v.staff_level is None or v.staff_level == staff_level)
    ]
    if not candidates:
        return []
    best = max(_specificity(v) for v in candidates)
    return [next(v for v in candidates if _specificity(v) == best)]


def rate_for(version: CommissionRuleVersion, level: int, monthly_volume: int) -> Decimal:
    """The rate for a level, from the tier containing the month's volume (this loan included)."""
    if version.tiers:
        for row in version.tiers:
            tier = Tier(int(row["min_amount"]), None if row.get("max_amount") is None else int(row["max_amount"]),
                        Decimal(str(row["level1_rate"])), Decimal(str(row.get("level2_rate") or "0")))
            if tier.contains(monthly_volume):
                return tier.level1_rate if level == 1 else tier.level2_rate
        return Decimal(0)
    return version.level1_rate if level == 1 else version.level2_rate


def tiers_from_text(text: str) -> list[dict[str, Any]]:
    """Tiers typed one per line as "下限元,上限元,一级比例,二级比例" (empty upper bound: no limit;
    rates as "1%" or "0.01"), e.g. "0,200000,1%,0.2%". Amounts become fen; overlaps are checked by
    :func:`parse_tiers` when the rule is saved."""
    from core.money import yuan_to_fen

    rows: list[dict[str, Any]] = []
    for n, line in enumerate((text or "").splitlines(), start=1):
        parts = [p.strip() for p in line.replace("，", ",").split(",")]
        if not any(parts):
            continue
        if len(parts) < 3:
            raise InvalidRule(f"第 {n} 行格式应为：下限元,上限元,一级比例,二级比例")
        try:
            low = yuan_to_fen(parts[0] or "0")
            high = yuan_to_fen(parts[1]) if parts[1] else None
        except Exception as exc:  # noqa: BLE001 - any bad number is the same refusal
            raise InvalidRule(f"第 {n} 行金额格式不正确") from exc
        rows.append({"min_amount": low, "max_amount": high, "level1_rate": parts[2],
                     "level2_rate": parts[3] if len(parts) > 3 and parts[3] else "0"})
    return rows


def tiers_as_text(tiers: list[dict[str, Any]] | None) -> str:
    from core.money import fen_to_yuan

    return "\n".join(
        f"{fen_to_yuan(int(t['min_amount']))},{'' if t.get('max_amount') is None else fen_to_yuan(int(t['max_amount']))},"
        f"{t['level1_rate']},{t.get('level2_rate') or '0'}" for t in tiers or [])
