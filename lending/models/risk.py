"""Risk rules (风控规则): rule sets per product, immutable versions, and every evaluation kept.

- ``RuleSet`` — one per product (unique); ``current_version_id`` is the version in force.
- ``RuleSetVersion`` — the ordered rules (JSON list of ``{"name", "expression", "outcome", "reason"}``,
  outcome ``reject`` / ``manual_review`` / ``warn``) and an optional credit-limit expression (fen).
  IMMUTABLE once flushed: a change is version N+1 (``lending.risk.rules.save_rule_set``).
- ``RiskEvaluation`` — one row per evaluation: the versions used, the facts (masked: never a plaintext
  ID number), the hits, the outcome (``pass`` / ``warn`` / ``manual_review`` / ``reject``), the credit
  limit and the credit provider's status. ``application_id`` is filled by the application module (no
  foreign key here: that table lives elsewhere). Append-only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = ["RiskEvaluation", "RuleSet", "RuleSetVersion"]


class RuleSet(Base):
    __tablename__ = "lending_rule_set"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("lending_product.id"), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("lending_rule_set_version.id", use_alter=True, name="fk_lending_rule_set_current_version"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RuleSetVersion(Base):
    __tablename__ = "lending_rule_set_version"
    __table_args__ = (UniqueConstraint("rule_set_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_set_id: Mapped[int] = mapped_column(ForeignKey("lending_rule_set.id"), index=True)
    version: Mapped[int]
    rules: Mapped[list[Any]] = mapped_column(JSON)  # ordered [{"name", "expression", "outcome", "reason"}]
    credit_limit_expression: Mapped[str | None] = mapped_column(String(500))
    note: Mapped[str | None] = mapped_column(String(300))
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]


class RiskEvaluation(Base):
    __tablename__ = "lending_risk_evaluation"
    __table_args__ = (
        Index("ix_lending_risk_evaluation_customer_at", "customer_id", "at"),
        Index("ix_lending_risk_evaluation_application", "application_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_version_id: Mapped[int] = mapped_column(ForeignKey("lending_product_version.id"), index=True)
    rule_set_version_id: Mapped[int | None] = mapped_column(ForeignKey("lending_rule_set_version.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    application_id: Mapped[int | None]
    inputs: Mapped[dict[str, Any]]  # facts, masked
    hits: Mapped[list[Any]] = mapped_column(JSON)  # [{"name", "outcome", "reason"}]
    outcome: Mapped[str] = mapped_column(String(16))  # pass | warn | manual_review | reject
    credit_limit_amount: Mapped[int | None]  # fen
    provider: Mapped[str | None] = mapped_column(String(40))
    provider_status: Mapped[str] = mapped_column(String(16))  # ok | timeout | error | skipped
    provider_detail: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime]
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


@event.listens_for(RuleSetVersion, "before_update")
@event.listens_for(RuleSetVersion, "before_delete")
def _refuse_version_change(*_: Any) -> None:
    raise RuntimeError("lending_rule_set_version is immutable: save the rule set to create a new version")


@event.listens_for(RiskEvaluation, "before_update")
@event.listens_for(RiskEvaluation, "before_delete")
def _refuse_evaluation_change(*_: Any) -> None:
    raise RuntimeError("lending_risk_evaluation is append-only")
