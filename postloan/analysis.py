"""Collections analysis (催收分析): per collector, per group, per agency (委外) and per bucket — cases, contact rate, promise rate,
promise-kept rate, amount recovered, recovery rate — and the overdue rate by region and by customer type.

Over the cases opened in a date range, each counted for the collector (and group) holding it now or when it
closed. Definitions (per case, then summed):

- contacted: at least one call, message or promise whose outcome is not 号码错误 / 无法联系;
- promised: at least one promise to pay; kept rate: kept promises ÷ promises decided (kept + broken);
- recovered: repayments received (not reversed, waivers excluded) on the case's loan, value-dated from the day
  the case opened, booked before it closed (or until now); recovery rate: recovered ÷ (recovered + still overdue).

The overdue rate by region, by industry (所属行业, from the customer's qualification profile) and by customer
type (客户类型): active loans overdue (bucket other than C) ÷ active loans; beside it the amount recovered and the
recovery rate of the cases (opened in the range) of the customers of each region, industry or type, defined as above.
Agency columns are added by the outsourcing module.

Every figure is limited to the viewer's data scope when a viewer is given: cases (and calls) held by staff in
their scope (a department manager: their department subtree; all: everything, the unassigned too), loans they may
see (``lending.servicing.loans.visible_clause``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import case, func, literal, or_, select, true
from sqlalchemy.orm import Session

from core import clock
from core.errors import ValidationFailed
from crm.models import Customer, CustomerQualification, Staff
from crm.scope import Viewer, owner_filter
from lending.models import Loan, Repayment
from lending.servicing import state
from lending.servicing.loans import visible_clause as loans_visible
from postloan.agency_models import Agency, AgencyAssignment
from postloan.models import CollectionAction, CollectionCase, CollectionGroup, CollectionPromise
from postloan.telephony.models import TelephonyCall

__all__ = ["CallRow", "OverdueRow", "StatRow", "by_agency", "by_bucket", "by_collector", "by_group", "calls_by_collector",
           "date_range", "overdue_by", "tables"]

NOT_CONTACTED = ("号码错误", "无法联系")


@dataclass(frozen=True)
class StatRow:
    key: object
    label: str
    cases: int
    contacted: int
    promised: int
    kept: int
    decided: int
    recovered: int  # fen
    still_overdue: int  # fen

    @staticmethod
    def _rate(num: int, den: int) -> Decimal | None:
        return (Decimal(num) / Decimal(den)).quantize(Decimal("0.0001"), ROUND_HALF_UP) if den else None

    @property
    def contact_rate(self) -> Decimal | None:
        return self._rate(self.contacted, self.cases)

    @property
    def promise_rate(self) -> Decimal | None:
        return self._rate(self.promised, self.cases)

    @property
    def kept_rate(self) -> Decimal | None:
        return self._rate(self.kept, self.decided)

    @property
    def recovery_rate(self) -> Decimal | None:
        return self._rate(self.recovered, self.recovered + self.still_overdue)


def _per_case(opened_from: date, opened_to: date, viewer: Viewer | None = None):  # noqa: ANN202 - one row per case
    c = CollectionCase
    contacted = (select(literal(1)).where(CollectionAction.case_id == c.id,
                                          CollectionAction.kind.in_(("call", "message", "promise")),
                                          func.coalesce(CollectionAction.outcome, "").not_in(NOT_CONTACTED))
                 .correlate(c).exists())
    promises = (select(func.count()).where(CollectionPromise.case_id == c.id).correlate(c).scalar_subquery())
    kept = (select(func.count()).where(CollectionPromise.case_id == c.id, CollectionPromise.status == "kept")
            .correlate(c).scalar_subquery())
    decided = (select(func.count()).where(CollectionPromise.case_id == c.id,
                                          CollectionPromise.status.in_(("kept", "broken"))).correlate(c).scalar_subquery())
    recovered = (select(func.coalesce(func.sum(Repayment.amount), 0)).where(
        Repayment.loan_id == c.loan_id, state.standing_clause(("repayment",)), Repayment.repayment_date >= c.opened_date,
        or_(c.closed_at.is_(None), Repayment.created_at <= c.closed_at)).correlate(c).scalar_subquery())
    agency = (select(AgencyAssignment.agency_id).where(AgencyAssignment.case_id == c.id)
              .order_by(AgencyAssignment.id.desc()).limit(1).correlate(c).scalar_subquery())  # the last one it went to
    stmt = (select(c.id, c.customer_id, c.collector_staff_id, c.group_id, c.bucket, agency.label("agency_id"),
                   case((contacted, 1), else_=0).label("contacted"), promises.label("promises"), kept.label("kept"),
                   decided.label("decided"), recovered.label("recovered"),
                   case((c.status == "open", c.overdue_amount), else_=0).label("still_overdue"))
            .where(c.opened_date >= opened_from, c.opened_date <= opened_to))
    if viewer is not None:
        stmt = stmt.where(owner_filter(viewer, c.collector_staff_id))
    return stmt.subquery()


def _grouped(session: Session, key: str, opened_from: date, opened_to: date,
             viewer: Viewer | None = None) -> list[tuple]:
    pc = _per_case(opened_from, opened_to, viewer)
    column = pc.c[key]
    return list(session.execute(select(
        column, func.count(), func.sum(pc.c.contacted), func.sum(case((pc.c.promises > 0, 1), else_=0)),
        func.sum(pc.c.kept), func.sum(pc.c.decided), func.sum(pc.c.recovered), func.sum(pc.c.still_overdue))
        .group_by(column).order_by(column)))


def _rows(raw: list[tuple], labels: dict) -> list[StatRow]:
    return [StatRow(k, labels.get(k, "未分配" if k is None else str(k)), int(n), int(ct or 0), int(pr or 0),
                    int(kp or 0), int(dc or 0), int(rc or 0), int(so or 0))
            for k, n, ct, pr, kp, dc, rc, so in raw]


def by_collector(session: Session, opened_from: date, opened_to: date, *,
                 viewer: Viewer | None = None) -> list[StatRow]:
    raw = _grouped(session, "collector_staff_id", opened_from, opened_to, viewer)
    names = dict(session.execute(select(Staff.id, Staff.display_name).where(
        Staff.id.in_([k for k, *_ in raw if k is not None]))).all())
    return _rows(raw, names)


def by_group(session: Session, opened_from: date, opened_to: date, *,
             viewer: Viewer | None = None) -> list[StatRow]:
    raw = _grouped(session, "group_id", opened_from, opened_to, viewer)
    names = dict(session.execute(select(CollectionGroup.id, CollectionGroup.name)).all())
    return _rows(raw, {**names, None: "未分组"})


def by_agency(session: Session, opened_from: date, opened_to: date, *,
              viewer: Viewer | None = None) -> list[StatRow]:
    """Cases that went out to an agency (委外), by the agency they went to last."""
    raw = [row for row in _grouped(session, "agency_id", opened_from, opened_to, viewer) if row[0] is not None]
    names = dict(session.execute(select(Agency.id, Agency.name)).all())
    return _rows(raw, names)


def by_bucket(session: Session, opened_from: date, opened_to: date, *,
              viewer: Viewer | None = None) -> list[StatRow]:
    raw = _grouped(session, "bucket", opened_from, opened_to, viewer)
    return _rows(raw, {})


@dataclass(frozen=True)
class CallRow:
    label: str
    calls: int
    answered: int
    talk_seconds: int

    @property
    def connect_rate(self) -> Decimal | None:
        return StatRow._rate(self.answered, self.calls)  # noqa: SLF001


def calls_by_collector(session: Session, day_from: date, day_to: date, *,
                       viewer: Viewer | None = None) -> list[CallRow]:
    """Call volume and connect rate (接通率 of the dialled calls) per member of staff, over the calls placed
    on those business days (queued or still ringing calls count as placed, not answered)."""
    start, end = clock.start_of_business_day(day_from), clock.start_of_business_day(day_to + timedelta(days=1))
    answered = case((TelephonyCall.result == "answered", 1), else_=0)
    rows = session.execute(select(Staff.display_name, func.count(), func.sum(answered),
                                  func.coalesce(func.sum(TelephonyCall.duration_seconds), 0))
                           .join(Staff, Staff.id == TelephonyCall.staff_id)
                           .where(TelephonyCall.created_at >= start, TelephonyCall.created_at < end,
                                  owner_filter(viewer, TelephonyCall.staff_id) if viewer is not None else true())
                           .group_by(Staff.display_name).order_by(func.count().desc()))
    return [CallRow(name, int(n), int(a or 0), int(t or 0)) for name, n, a, t in rows]


@dataclass(frozen=True)
class OverdueRow:
    label: str
    loans: int
    overdue: int
    overdue_amount: int  # fen, of the open cases
    recovered: int = 0  # fen: recovered on the cases (opened in the range) of these customers
    still_overdue: int = 0  # fen: still overdue on those cases

    @property
    def rate(self) -> Decimal | None:
        return StatRow._rate(self.overdue, self.loans)  # noqa: SLF001

    @property
    def recovery_rate(self) -> Decimal | None:
        return StatRow._rate(self.recovered, self.recovered + self.still_overdue)  # noqa: SLF001


_DIMENSIONS = {"region": Customer.region, "customer_type": Customer.customer_type,
               "industry": CustomerQualification.industry}


def _with_dimension(query, dimension: str, customer_id):  # noqa: ANN001, ANN202 - a SELECT being built
    query = query.join(Customer, Customer.id == customer_id)
    if dimension == "industry":  # a customer without a profile counts as 未填写
        query = query.outerjoin(CustomerQualification, CustomerQualification.customer_id == Customer.id)
    return query


def overdue_by(session: Session, dimension: str, opened_from: date | None = None, opened_to: date | None = None, *,
               viewer: Viewer | None = None) -> list[OverdueRow]:
    """Active loans and how many are overdue, by ``region``, ``industry`` or ``customer_type`` of the customer,
    with the amount recovered and the recovery rate of the cases opened from ``opened_from`` to ``opened_to``
    (default: all) of those customers."""
    column = _DIMENSIONS[dimension]
    amount = (select(func.coalesce(func.sum(CollectionCase.overdue_amount), 0)).where(
        CollectionCase.loan_id == Loan.id, CollectionCase.status == "open").correlate(Loan).scalar_subquery())
    query = _with_dimension(select(column, func.count(), func.sum(case((Loan.bucket != "C", 1), else_=0)),
                                   func.sum(amount)), dimension, Loan.customer_id)
    query = query.where(Loan.status == "active")
    if viewer is not None:
        query = query.where(loans_visible(viewer))
    rows = session.execute(query.group_by(column).order_by(func.count().desc()))
    pc = _per_case(opened_from or date(2000, 1, 1), opened_to or date(9999, 12, 31), viewer)
    recovered = {label or "未填写": (int(r or 0), int(o or 0)) for label, r, o in session.execute(
        _with_dimension(select(column, func.sum(pc.c.recovered), func.sum(pc.c.still_overdue)), dimension,
                        pc.c.customer_id).group_by(column))}
    out = [OverdueRow(label or "未填写", int(n), int(o or 0), int(a or 0), *recovered.pop(label or "未填写", (0, 0)))
           for label, n, o, a in rows]
    # customers whose loans are all closed now but whose cases recovered money in the range
    return out + [OverdueRow(label, 0, 0, 0, r, o) for label, (r, o) in recovered.items() if r or o]


def date_range(raw_from: str | None, raw_to: str | None) -> tuple[date, date]:
    """The analysis's range of case opening days, typed as YYYY-MM-DD (default: the 90 days to today)."""
    try:
        to = date.fromisoformat(raw_to) if raw_to else clock.today()
        start = date.fromisoformat(raw_from) if raw_from else to - timedelta(days=90)
    except ValueError:
        raise ValidationFailed("日期格式不正确，应为 YYYY-MM-DD", field="from") from None
    if start > to:
        raise ValidationFailed("开始日期不能晚于结束日期", field="from")
    return start, to


def tables(session: Session, viewer: Viewer, start: date, to: date) -> dict[str, list]:
    """Every table of the analysis (the console page, its export and the staff API), within the viewer's scope."""
    return {"collectors": by_collector(session, start, to, viewer=viewer),
            "groups": by_group(session, start, to, viewer=viewer),
            "agencies": by_agency(session, start, to, viewer=viewer),
            "buckets": by_bucket(session, start, to, viewer=viewer),
            "calls": calls_by_collector(session, start, to, viewer=viewer),
            **{key: overdue_by(session, dimension, start, to, viewer=viewer)
               for key, dimension in (("regions", "region"), ("industries", "industry"), ("types", "customer_type"))}}
