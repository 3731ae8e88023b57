"""Tables of post-loan collections (贷后催收).

- ``CollectionCase`` — one per overdue loan while it is overdue (at most one ``open`` per loan: a partial unique
  index). Opened by the nightly run, closed on cure (the loan current again or paid off) or write-off (核销).
  Carries the figures the queue sorts and filters on (bucket, overdue days and amounts, risk tier, region,
  product), refreshed by the nightly run, and its collector and group. ``collector_staff_id`` is mirrored onto
  ``lending_loan.collector_staff_id``, which lending's data scope reads.
- ``CollectionAction`` — APPEND-ONLY log of collections work (催收记录): calls, messages, promises, notes,
  assignments; the case's history. Table name kept from lending (moved here with the code).
- ``CollectionPromise`` — a promise to pay (承诺还款) with date and amount; its status moves once from ``open``
  to ``kept`` or ``broken`` (conditional UPDATE).
- ``CollectionGroup`` / ``CollectionGroupMember`` — collector groups (催收组) by seniority; a collector sits in one.
- ``AllocationRule`` — a manager's allocation rule (分案规则): conditions on bucket, risk tier, amount, region,
  product; the group that gets the matching cases; balanced by open-case count or balance; re-assignment after
  N days without a promise or a payment. The lowest ``priority`` matching rule wins.
- ``CollectionScript`` — a script (话术) per bucket and tier with ``{variables}``.
- ``WarningRule`` — an early-warning rule (贷后预警): a condition in the risk rule language over post-loan facts
  and the tier it raises a case to (``postloan.rerating``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, event, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = [
    "ACTION_KIND_LABELS", "BALANCE_LABELS", "CASE_CLOSE_LABELS", "CASE_STATUS_LABELS", "OUTCOME_LABELS",
    "PROMISE_STATUS_LABELS", "RISK_TIERS", "RISK_TIER_LABELS", "AllocationRule", "CollectionAction",
    "CollectionCase", "CollectionGroup", "CollectionGroupMember", "CollectionPromise", "CollectionScript",
    "WarningRule",
]

ACTION_KIND_LABELS = {"call": "电话", "message": "短信/消息", "promise": "承诺还款", "note": "备注", "assign": "分配"}
PROMISE_STATUS_LABELS = {"open": "待兑现", "kept": "已兑现", "broken": "已违约"}
CASE_STATUS_LABELS = {"open": "催收中", "closed": "已结案"}
CASE_CLOSE_LABELS = {"cured": "已还至正常", "paid_off": "已结清", "written_off": "已核销"}
RISK_TIERS = ("low", "medium", "high")
RISK_TIER_LABELS = {"low": "低风险", "medium": "中风险", "high": "高风险"}
BALANCE_LABELS = {"count": "按在催案件数均衡", "balance": "按在催金额均衡"}
# one-click outcomes (一键登记结果) of a contact
OUTCOME_LABELS = {"promise": "承诺还款", "dispute": "有异议", "wrong_number": "号码错误", "unreachable": "无法联系",
                  "paid": "已还款"}


class CollectionCase(Base):
    __tablename__ = "postloan_case"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed')", name="status_known"),
        CheckConstraint("close_reason IS NULL OR close_reason IN ('cured', 'paid_off', 'written_off')",
                        name="close_reason_known"),
        CheckConstraint("risk_tier IN ('low', 'medium', 'high')", name="risk_tier_known"),
        # one open case per loan: two nightly runs (or a run and the hourly rollover) cannot open two
        Index("uq_postloan_case_open_loan", "loan_id", unique=True,
              postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")),
        # a collector's queue: their open cases, longest overdue first
        Index("ix_postloan_case_queue", "collector_staff_id", "status", "overdue_days", "id"),
        Index("ix_postloan_case_status_bucket", "status", "bucket"),
        # a manager's queue (everything open, longest overdue first)
        Index("ix_postloan_case_status_days", "status", "overdue_days", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("lending_loan.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("lending_product.id"))
    status: Mapped[str] = mapped_column(String(8), default="open")
    close_reason: Mapped[str | None] = mapped_column(String(12))
    opened_date: Mapped[date]
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    closed_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    # refreshed by the nightly run (and when a payment is posted)
    bucket: Mapped[str] = mapped_column(String(4))
    overdue_days: Mapped[int] = mapped_column(default=0)
    overdue_amount: Mapped[int] = mapped_column(default=0)  # fen: due and unpaid
    outstanding_amount: Mapped[int] = mapped_column(default=0)  # fen: everything unpaid
    risk_tier: Mapped[str] = mapped_column(String(8), default="low")
    region: Mapped[str | None] = mapped_column(String(40))
    # allocation
    collector_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("postloan_group.id"))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("postloan_rule.id"))
    assigned_at: Mapped[datetime | None]
    # the last promise or payment (or the assignment): re-assignment counts days from here
    progress_at: Mapped[datetime | None]
    # the credit provider's overdue record count at the last check (None: never checked); early warning
    external_overdue_count: Mapped[int | None]
    credit_checked_at: Mapped[datetime | None]  # the last credit re-check (贷后征信复查); None: never


class CollectionAction(Base):
    __tablename__ = "lending_collection_action"
    __table_args__ = (
        CheckConstraint("kind IN ('call', 'message', 'promise', 'note', 'assign')", name="kind_known"),
        Index("ix_lending_collection_action_loan_at", "loan_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("lending_loan.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("postloan_case.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    outcome: Mapped[str | None] = mapped_column(String(40))  # e.g. 接通 / 未接 / 关机, or a one-click outcome
    note: Mapped[str | None] = mapped_column(String(500))
    bucket: Mapped[str] = mapped_column(String(4))  # the loan's bucket when the action was logged
    overdue_days: Mapped[int]
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    at: Mapped[datetime]


class CollectionPromise(Base):
    __tablename__ = "lending_collection_promise"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'kept', 'broken')", name="status_known"),
        CheckConstraint("promised_amount > 0", name="amount_positive"),
        Index("ix_lending_collection_promise_status_date", "status", "promised_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("lending_loan.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("postloan_case.id"), index=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("lending_collection_action.id"), unique=True)
    made_date: Mapped[date]  # repayments from this date on count towards the promise
    promised_date: Mapped[date]
    promised_amount: Mapped[int]  # fen
    status: Mapped[str] = mapped_column(String(8), default="open")
    resolved_at: Mapped[datetime | None]
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class CollectionGroup(Base):
    __tablename__ = "postloan_group"
    __table_args__ = (CheckConstraint("seniority BETWEEN 1 AND 3", name="seniority_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    seniority: Mapped[int] = mapped_column(default=1)  # 1 junior (初级), 2 intermediate (中级), 3 senior (资深)
    created_at: Mapped[datetime]


class CollectionGroupMember(Base):
    __tablename__ = "postloan_group_member"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), primary_key=True)  # one group per collector
    group_id: Mapped[int] = mapped_column(ForeignKey("postloan_group.id"), index=True)
    created_at: Mapped[datetime]


class AllocationRule(Base):
    __tablename__ = "postloan_rule"
    __table_args__ = (
        CheckConstraint("balance_by IN ('count', 'balance')", name="balance_by_known"),
        CheckConstraint("reassign_after_days IS NULL OR reassign_after_days > 0", name="reassign_positive"),
        CheckConstraint("min_amount IS NULL OR max_amount IS NULL OR min_amount <= max_amount", name="amount_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    priority: Mapped[int] = mapped_column(default=100)  # lower first
    buckets: Mapped[str | None] = mapped_column(String(40))  # "M1,M2"; empty: any
    risk_tiers: Mapped[str | None] = mapped_column(String(40))  # "high,medium"; empty: any
    min_amount: Mapped[int | None]  # overdue amount, fen
    max_amount: Mapped[int | None]
    region: Mapped[str | None] = mapped_column(String(40))  # contained in the case's region
    product_id: Mapped[int | None] = mapped_column(ForeignKey("lending_product.id"))
    group_id: Mapped[int] = mapped_column(ForeignKey("postloan_group.id"))
    balance_by: Mapped[str] = mapped_column(String(8), default="count")
    reassign_after_days: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
    updated_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    updated_at: Mapped[datetime]


class CollectionScript(Base):
    __tablename__ = "postloan_script"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    bucket: Mapped[str | None] = mapped_column(String(4))  # None: any bucket
    risk_tier: Mapped[str | None] = mapped_column(String(8))  # None: any tier
    body: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    updated_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    updated_at: Mapped[datetime]


class WarningRule(Base):
    __tablename__ = "postloan_warning_rule"
    __table_args__ = (CheckConstraint("raise_to IN ('medium', 'high')", name="raise_to_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    expression: Mapped[str] = mapped_column(String(500))
    raise_to: Mapped[str] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(default=True)
    updated_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    updated_at: Mapped[datetime]


@event.listens_for(CollectionAction, "before_update")
@event.listens_for(CollectionAction, "before_delete")
def _refuse_change(_mapper: Any, _connection: Any, target: Any) -> None:
    raise RuntimeError(f"{target.__tablename__} is append-only: a mistaken action is followed by a note, never edited")


# The telephony tables (postloan/telephony/models.py) and the outsourcing tables (postloan/agency_models.py,
# beside this module so that postloan.agency may import both), so core.plugins.load_models sees them too.
from postloan.agency_models import Agency, AgencyAssignment, AgencyUser  # noqa: E402, F401
from postloan.telephony.models import DialBatch, DoNotCall, TelephonyCall, TelephonyCallback  # noqa: E402, F401
