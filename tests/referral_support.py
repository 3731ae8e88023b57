"""Small helpers for the referral tests: referrers, customers with referrers, rules."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from referral import attribution, referrers, rules
from referral.models import Attribution, CommissionEntry, Referrer
from tests.factories import make_customer

_seq = itertools.count(1)
T0 = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)  # 2026-03-10 12:00 Shanghai


def make_agent(session: Session, name: str | None = None, *, parent: Referrer | None = None,
               kind: str = "agent", payee: bool = True) -> Referrer:
    n = next(_seq)
    return referrers.create_referrer(session, referrers.ReferrerInput(
        kind=kind, name=name or f"经纪人{n}", parent_id=parent.id if parent else None,
        payee_name=f"王小{n}" if payee else None, payee_channel="bank" if payee else None,
        payee_bank="招商银行" if payee else None, payee_account=f"62250000{n:08d}" if payee else None))


def customer_referrer(session: Session, name: str = "李四", **kw: object) -> tuple[int, Referrer]:
    customer = make_customer(session, name=name, **kw)
    return customer.id, referrers.create_referrer(session, referrers.ReferrerInput(kind="customer",
                                                                                    customer_id=customer.id))


def referred_customer(session: Session, referrer: Referrer, **kw: object) -> int:
    customer = make_customer(session, **kw)
    attribution.attribute(session, customer.id, referrer.code, source="miniprogram", at=T0)
    return customer.id


def principal_rule(session: Session, name: str = "放款佣金", *, level1: str = "0.01", level2: str = "0.002",
                   **terms: object) -> rules.CommissionRule:
    return rules.create_rule(session, name, "referrer", rules.RuleTerms(
        basis="principal", level1_rate=Decimal(level1), level2_rate=Decimal(level2), **terms))


def counts(session: Session) -> tuple[int, int, int]:
    return (session.scalar(select(func.count()).select_from(Referrer)),
            session.scalar(select(func.count()).select_from(Attribution)),
            session.scalar(select(func.count()).select_from(CommissionEntry)))
