"""The application module's side of lending.risk: the recent-applications fact and the evaluation call.

Imported by lending.applications (it never imports back). Registers :class:`ApplicationFacts` as the
risk module's facts provider on import.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import clock
from core.money import yuan_to_fen
from crm.scope import Viewer
from lending.models import Application
from lending.risk import evaluate as risk_evaluate
from lending.risk import facts as risk_facts

__all__ = ["ApplicationFacts", "evaluate", "recent_applications"]


def recent_applications(session: Session, customer_id: int, *, days: int = 90,
                        exclude_application_id: int | None = None) -> int:
    """How many applications the customer started in the last ``days`` days (a risk fact)."""
    since = clock.now() - timedelta(days=days)
    stmt = select(func.count()).select_from(Application).where(
        Application.customer_id == customer_id, Application.created_at >= since)
    if exclude_application_id is not None:
        stmt = stmt.where(Application.id != exclude_application_id)
    return int(session.scalar(stmt) or 0)


class ApplicationFacts:
    """``recent_applications(N)``: the customer's other applications created in the last N days."""

    def recent_applications(self, session: Session, customer_id: int, days: int, *,
                            exclude_application_id: int | None = None) -> int:
        return recent_applications(session, customer_id, days=days, exclude_application_id=exclude_application_id)


risk_facts.set_facts_provider(ApplicationFacts())


def _income_fen(raw: object) -> int | None:
    try:
        value = Decimal(str(raw).strip().replace(",", "")) if raw not in (None, "") else None
    except InvalidOperation:
        return None
    return yuan_to_fen(value) if value is not None and value >= 0 else None


def evaluate(session: Session, app: Application, viewer: Viewer | None) -> int | None:
    fields = app.fields or {}
    applicant = risk_evaluate.Applicant(amount=app.requested_amount, term=app.term_months,
                                        income_monthly=_income_fen(fields.get("monthly_income")),
                                        occupation=(fields.get("employer") or None))
    row = risk_evaluate.evaluate_applicant(
        session, product_version_id=app.product_version_id, customer_id=app.customer_id, applicant=applicant,
        application_id=app.id, by_staff_id=viewer.staff_id if viewer else None, facts_provider=ApplicationFacts())
    return row.id
