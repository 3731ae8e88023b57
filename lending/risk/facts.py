"""Applicant facts for risk rules, and the hook through which the application module supplies its own.

Facts (names usable in rule expressions, see ``lending.risk.expressions.FACTS``): age (from the ID
number's birth date at ``core.clock.today()``), income_monthly (fen), occupation, debt_ratio,
credit_score and overdue_count (credit report), blacklisted (CRM status), region, customer_type,
the qualification profile's employment_type, social_insurance_months, provident_fund_months,
has_property, has_car, credit_level, credit_overdue_count, credit_queries_6m and industry,
amount (fen), term (months), and the function ``recent_applications(N)``.

``recent_applications(N)`` counts the customer's OTHER applications created in the last N days. The
applications table belongs to the application module, so the count comes through
:class:`FactsProvider`; the application module implements it and registers it with
:func:`set_facts_provider` (or passes one to ``evaluate``). Until then the default
:class:`NoApplications` counts nothing (always 0) — a rule on it never fires.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

__all__ = ["FactsProvider", "NoApplications", "get_facts_provider", "set_facts_provider"]


class FactsProvider(Protocol):
    def recent_applications(self, session: Session, customer_id: int, days: int, *,
                            exclude_application_id: int | None = None) -> int:
        """How many applications the customer created in the last ``days`` days, ``exclude_application_id`` aside."""
        ...


class NoApplications:
    """The default before the application module registers its provider: no applications, ever."""

    def recent_applications(self, session: Session, customer_id: int, days: int, *,
                            exclude_application_id: int | None = None) -> int:
        return 0


_provider: FactsProvider = NoApplications()


def get_facts_provider() -> FactsProvider:
    return _provider


def set_facts_provider(provider: FactsProvider | None) -> None:
    global _provider
    _provider = provider or NoApplications()
