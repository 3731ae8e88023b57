"""Drill-down from the snapshot charts (overdue trend, roll rates, vintage curves) to the loan list: the loans
whose snapshot row makes up the figure clicked, read from ``analytics_loan_day`` as the chart read it.

The loan list's query-string parameters (its page, its export, the charts' links):

- ``as_of`` (a snapshot date) and ``snapshot_bucket`` (a bucket, ``overdue`` for M1 and worse, or empty for every
  loan in the snapshot): the loans whose row on that day had that bucket (a point of the overdue trend);
- ``to_as_of`` and ``to_bucket`` (a bucket or ``worse``): of those, the ones that stood in that bucket — or any
  worse one — on the later snapshot (a roll rate's rolled loans, 迁徙);
- ``vintage`` (``YYYY-MM``): the loans disbursed (``Loan.start_date``) in that month (a vintage curve's point,
  with ``as_of`` the month-end snapshot and ``snapshot_bucket=overdue``).

The clauses are added to the loan list's own (``lending.servicing.loans.filter_clauses``: the viewer's scope and
the list's filters), as the customer list adds the funnel's; :func:`summary` counts the rows and sums their
principal outstanding on ``as_of`` — the figure the chart plotted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from analytics.loan_history import RANK, add_months
from analytics.models import LoanDay
from core.errors import ValidationFailed
from crm.models import Customer
from crm.scope import Viewer
from lending.models import BUCKETS, Loan
from lending.servicing import loans

__all__ = ["PARAMS", "SnapshotFilter", "chips", "clauses", "from_params", "link", "params", "summary", "url"]

PARAMS = ("as_of", "snapshot_bucket", "to_as_of", "to_bucket", "vintage")
WORSE = "worse"
OVERDUE = "overdue"


@dataclass(frozen=True)
class SnapshotFilter:
    as_of: date | None = None
    snapshot_bucket: str | None = None  # a bucket, "overdue" (every bucket but C), None: every loan of the day
    to_as_of: date | None = None
    to_bucket: str | None = None  # a bucket, or "worse": any bucket worse than ``snapshot_bucket``
    vintage: date | None = None  # the first day of the disbursement month

    @property
    def active(self) -> bool:
        return self.as_of is not None


def _date(raw: str, field: str, label: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(f"{label}格式不正确：{raw}", field=field) from None


def from_params(params: Any) -> SnapshotFilter:
    """The snapshot filter of a query string (or a job's stored parameters); a bad value is a clear error."""
    raw = {k: str(params.get(k) or "").strip() for k in PARAMS}
    if not raw["as_of"]:
        if any(raw.values()):
            raise ValidationFailed("快照筛选缺少快照日期", field="as_of")
        return SnapshotFilter()
    bucket = raw["snapshot_bucket"] or None
    if bucket not in (None, OVERDUE, *BUCKETS):
        raise ValidationFailed(f"未知的账期：{bucket}", field="snapshot_bucket")
    to_as_of = _date(raw["to_as_of"], "to_as_of", "迁徙截止快照日期") if raw["to_as_of"] else None
    to_bucket = raw["to_bucket"] or None
    if (to_as_of is None) != (to_bucket is None):
        raise ValidationFailed("迁徙筛选需要截止快照日期和账期", field="to_bucket")
    if to_bucket not in (None, WORSE, *BUCKETS) or (to_bucket == WORSE and bucket not in BUCKETS):
        raise ValidationFailed(f"未知的迁徙账期：{to_bucket}", field="to_bucket")
    vintage = _date(raw["vintage"] + "-01", "vintage", "放款月份") if raw["vintage"] else None
    return SnapshotFilter(as_of=_date(raw["as_of"], "as_of", "快照日期"), snapshot_bucket=bucket, to_as_of=to_as_of,
                          to_bucket=to_bucket, vintage=vintage)


def params(flt: SnapshotFilter) -> dict[str, str]:
    """The query-string parameters of a filter (what :func:`from_params` reads back)."""
    out = {"as_of": flt.as_of.isoformat() if flt.as_of else None, "snapshot_bucket": flt.snapshot_bucket,
           "to_as_of": flt.to_as_of.isoformat() if flt.to_as_of else None, "to_bucket": flt.to_bucket,
           "vintage": flt.vintage.strftime("%Y-%m") if flt.vintage else None}
    return {k: v for k, v in out.items() if v}


def url(flt: SnapshotFilter) -> str:
    """The loan list's drill-down link of a snapshot figure."""
    return "/console/lending/loans?" + urlencode(params(flt))


def link(**kw: Any) -> str:
    """The drill-down link of a figure: ``link(as_of=day, snapshot_bucket="M1")``."""
    return url(SnapshotFilter(**kw))


def _bucket_clause(column: Any, bucket: str | None) -> list[ColumnElement[bool]]:
    if bucket == OVERDUE:
        return [column != "C"]
    return [column == bucket] if bucket else []


def clauses(flt: SnapshotFilter) -> tuple[ColumnElement[bool], ...]:
    """WHERE clauses over ``Loan`` (none when the filter is empty)."""
    if not flt.active:
        return ()
    on_day = select(LoanDay.loan_id).where(LoanDay.snapshot_date == flt.as_of,
                                           *_bucket_clause(LoanDay.bucket, flt.snapshot_bucket))
    out: list[ColumnElement[bool]] = [Loan.id.in_(on_day)]
    if flt.to_as_of is not None:
        if flt.to_bucket == WORSE:
            worse = [b for b in BUCKETS if RANK[b] > RANK[flt.snapshot_bucket or "C"]]
            later_bucket: list[ColumnElement[bool]] = [LoanDay.bucket.in_(worse)]
        else:
            later_bucket = _bucket_clause(LoanDay.bucket, flt.to_bucket)
        out.append(Loan.id.in_(select(LoanDay.loan_id).where(LoanDay.snapshot_date == flt.to_as_of, *later_bucket)))
    if flt.vintage is not None:
        out += [Loan.start_date >= flt.vintage, Loan.start_date < add_months(flt.vintage, 1)]
    return tuple(out)


def summary(session: Session, viewer: Viewer, lf: loans.LoanFilter, flt: SnapshotFilter) -> tuple[int, int]:
    """(loans, their principal outstanding on ``as_of``) of the loan list with this filter: the figure's rows."""
    stmt = (select(func.count(Loan.id), func.coalesce(func.sum(LoanDay.outstanding_principal_amount), 0))
            .select_from(Loan).join(Customer, Customer.id == Loan.customer_id)
            .join(LoanDay, (LoanDay.loan_id == Loan.id) & (LoanDay.snapshot_date == flt.as_of))
            .where(*loans.filter_clauses(viewer, lf), *clauses(flt)))
    n, amount = session.execute(stmt).one()
    return int(n or 0), int(amount or 0)


def _bucket_text(bucket: str | None) -> str:
    return {None: "在贷", OVERDUE: "M1 及以上", WORSE: "更差账期"}.get(bucket, bucket or "")


def chips(flt: SnapshotFilter) -> list[str]:
    """The filter as the list shows it, one chip per condition: '2026-11-03 快照：M1',
    '2026-11-03 快照：M1 → 2026-12-03 快照：更差账期', '2026-05 放款 · MOB3'."""
    if not flt.active:
        return []
    assert flt.as_of is not None
    out = []
    if flt.vintage is not None:
        mob = (flt.as_of.year - flt.vintage.year) * 12 + flt.as_of.month - flt.vintage.month
        out.append(f"{flt.vintage.strftime('%Y-%m')} 放款 · MOB{mob}")
    first = f"{flt.as_of.isoformat()} 快照：{_bucket_text(flt.snapshot_bucket)}"
    if flt.to_as_of is not None:  # a roll: one chip, from the first day's bucket to the later one's
        first += f" → {flt.to_as_of.isoformat()} 快照：{_bucket_text(flt.to_bucket)}"
    out.append(first)
    return out
