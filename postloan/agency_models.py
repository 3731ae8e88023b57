"""Outsourcing (委外) tables: agencies, their portal users, and the assignments of cases to them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class Agency(Base):
    """An external collection agency (委外机构)."""

    __tablename__ = "postloan_agency"
    __table_args__ = (CheckConstraint("commission_rate > 0 AND commission_rate < 1", name="commission_rate_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    commission_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))  # of the amount recovered, e.g. 0.1500
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class AgencyUser(Base):
    """A person of an agency who logs into the agency portal (never a staff member)."""

    __tablename__ = "postloan_agency_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("postloan_agency.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class AgencyAssignment(Base):
    """A case handed to an agency, with the commission rate agreed then; ``recalled_at`` ends it. At most one
    active assignment per case (a partial unique index decides between two managers at once)."""

    __tablename__ = "postloan_agency_assignment"
    __table_args__ = (
        Index("uq_postloan_agency_assignment_active_case", "case_id", unique=True,
              postgresql_where=text("recalled_at IS NULL"), sqlite_where=text("recalled_at IS NULL")),
        Index("ix_postloan_agency_assignment_agency_active", "agency_id", "recalled_at"),
        CheckConstraint("commission_rate > 0 AND commission_rate < 1", name="commission_rate_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("postloan_case.id"))
    agency_id: Mapped[int] = mapped_column(ForeignKey("postloan_agency.id"))
    commission_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    assigned_at: Mapped[datetime]
    assigned_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    recalled_at: Mapped[datetime | None]
    recalled_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    recall_reason: Mapped[str | None] = mapped_column(String(200))
