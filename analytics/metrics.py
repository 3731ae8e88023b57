"""The metric registry (指标): each figure defined once — key, Chinese label, unit, one aggregate query, the
dimensions it can be filtered and grouped by, and the list it drills down to.

A metric's query is built from the same scope and filter clauses as the list it drills to
(``crm.customer_queries.filtered`` for customers, ``lending.servicing.loans.filter_clauses`` for loans), so the
figure and the list's row count agree by construction. Nothing is computed row by row in Python: a metric is
``SELECT <aggregate> … [GROUP BY <dimension>]``; a rate is the quotient of two aggregates of one query.

Other packages add metrics with :func:`register` (finance's revenue, deposits … later) — a :class:`Metric` needs
no change here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    and_,
    case,
    cast,
    extract,
    func,
    inspect,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.util import find_tables

from analytics import funnel
from analytics.models import CustomerFunnel
from core import clock, money
from crm import customer_queries
from crm.models import Customer, Department, Staff
from crm.scope import Viewer
from lending import application_list
from lending.models import Application, Disbursement, Funder, Loan, LoanInstallment, Product
from lending.servicing import loans

__all__ = ["APPROVED", "DIMENSION_LABELS", "METRICS", "SOURCE_LABELS", "TIME_DIMENSIONS", "Cube", "Filters", "Metric",
           "TimeColumn", "application_url", "bill_url", "bucket_span", "by_dimension", "by_dimensions", "cube", "department_path", "dimensions_of", "display", "funnel_counts", "funnel_figures", "funnel_medians", "funnel_url", "get", "join_customer", "loan_url", "rate", "register", "staff_names", "time_of", "value", "values"]

DIMENSION_LABELS = {"period": "时间段", "department": "部门", "salesperson": "业务员", "source": "来源",
                    "source_detail": "渠道码/来源明细", "product": "产品", "funder": "资方", "funder_type": "资方类型",
                    "region": "地区", "industry": "行业", "bucket": "账期"}
# The time dimension (时间维度): a metric counted by a date (its period filter's column, ``Metric.time``) is
# grouped by the business day, the ISO week (from Monday) or the month of that date; a row's key is the
# bucket's first day.
TIME_DIMENSIONS = {"day": "日", "week": "周", "month": "月"}

# Customer sources (Customer.source is free text; these are the codes the product writes). Unknown ones show as is.
SOURCE_LABELS = {"manual": "手工录入", "console": "控制台录入", "import": "批量导入", "miniprogram": "小程序",
                 "wecom": "企业微信", "referral": "转介绍", "api": "开放接口", "demo": "演示数据"}


@dataclass(frozen=True)
class Filters:
    """What a figure is cut by. ``start``/``end``: business dates (Asia/Shanghai), inclusive."""

    start: date
    end: date
    department_id: int | None = None  # the customer's owner is in this department or one below it
    owner_id: int | None = None  # the salesperson (the customer's owner)
    source: str | None = None
    region: str | None = None
    product_id: int | None = None
    owner_department_id: int | None = None  # the owner is in this department itself: a 部门 row's drill-down
    source_detail: str | None = None  # the customer's 来源明细 exactly (a WeCom channel code: "渠道码：<name> / …")
    industry: str | None = None  # the qualification's industry (crm.customer_queries.industry_clause)
    funder_id: int | None = None  # 资方: an application's product's funder, a loan's contract's funder
    funder_type: str | None = None  # that funder's type (lending.models.FunderType)

    def previous(self) -> Filters:
        """The period of the same length just before this one (for the change vs previous period)."""
        days = (self.end - self.start).days + 1
        return replace(self, start=self.start - timedelta(days=days), end=self.start - timedelta(days=1))

    @classmethod
    def this_month(cls, today: date | None = None, **kw: Any) -> Filters:
        today = today or clock.today()
        return cls(start=today.replace(day=1), end=today, **kw)


Query = Callable[[Session, Viewer, Filters, tuple[ColumnElement[Any], ...]], Select[Any]]


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str  # count | fen | rate
    # The SELECT of the given columns over the metric's rows, scoped and filtered; the first column is the
    # aggregate, a grouped query adds the dimension's column in front.
    query: Query
    aggregate: Callable[[], ColumnElement[Any]]
    dimensions: dict[str, Callable[[], ColumnElement[Any]]] = field(default_factory=dict)  # group-by columns
    filters: frozenset[str] = frozenset()  # the Filters fields it honours ("period" for start/end)
    drill: Callable[[Filters], str] | None = None  # the list URL with the same filters
    # a rate: numerator and denominator aggregates of the same query
    ratio: tuple[Callable[[], ColumnElement[Any]], Callable[[], ColumnElement[Any]]] | None = None
    time: TimeColumn | None = None  # the date the period filter counts it by: it can be grouped by day/week/month


@dataclass(frozen=True)
class TimeColumn:
    """The column a metric's period filter reads. ``instant``: a UTC timestamp, bucketed by its business date
    (Asia/Shanghai, as the filter's ``start_of_business_day`` bounds read it); else already a business date.
    ``join``: what the metric's query must join to read it (the loan's disbursement)."""

    column: Callable[[], ColumnElement[Any]]
    instant: bool
    join: Callable[[Select[Any]], Select[Any]] | None = None


def dimensions_of(metric: Metric) -> set[str]:
    """The dimensions the metric can be grouped by: its own, and the time ones when it is counted by a date."""
    return set(metric.dimensions) | (set(TIME_DIMENSIONS) if metric.time is not None else set())


def _business_date(session: Session, time: TimeColumn) -> ColumnElement[Any]:
    """The column as a business date. The zone and the modifiers are SQL literals, not bound parameters, so
    that PostgreSQL sees the grouped expression and the selected one as the same."""
    column = time.column()
    if session.get_bind().dialect.name == "postgresql":
        if time.instant:
            column = func.timezone(literal_column(f"'{clock.BUSINESS_TZ.key}'"), column)
        return column
    if time.instant:  # SQLite keeps UTC text; Asia/Shanghai has had a fixed +8 hours since 1991
        hours = int(clock.now().astimezone(clock.BUSINESS_TZ).utcoffset().total_seconds() // 3600)  # type: ignore[union-attr]
        return func.datetime(column, literal_column(f"'{hours:+d} hours'"))
    return column


def _time_bucket(session: Session, metric: Metric, dimension: str) -> ColumnElement[Any]:
    """The first day of the row's day / ISO week / month, a ``date`` on both databases, computed in SQL."""
    assert metric.time is not None
    local = _business_date(session, metric.time)
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.date_trunc(literal_column(f"'{dimension}'"), local), Date)
    modifiers = {"day": (), "week": ("'-6 days'", "'weekday 1'"), "month": ("'start of month'",)}[dimension]
    return type_coerce(func.date(local, *(literal_column(m) for m in modifiers)), Date)


def bucket_span(dimension: str, key: date) -> tuple[date, date]:
    """The first and last day of the time bucket that starts on ``key``."""
    if dimension == "day":
        return key, key
    if dimension == "week":
        return key, key + timedelta(days=6)
    following = (key.replace(day=28) + timedelta(days=4)).replace(day=1)
    return key, following - timedelta(days=1)


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    if metric.key in METRICS:
        raise ValueError(f"metric {metric.key} is already registered")
    METRICS[metric.key] = metric
    return metric


def get(key: str) -> Metric:
    return METRICS[key]


# Filters field -> the name a metric lists in ``Metric.filters`` when it honours it
FILTER_FIELDS = {"department_id": "department", "owner_department_id": "department", "owner_id": "salesperson",
                 "source": "source", "source_detail": "source_detail", "region": "region", "industry": "industry",
                 "product_id": "product", "funder_id": "funder", "funder_type": "funder_type"}


def _check(metric: Metric, flt: Filters) -> None:
    for name, dim in FILTER_FIELDS.items():
        if getattr(flt, name) not in (None, "") and dim not in metric.filters:
            raise ValueError(f"metric {metric.key} cannot be filtered by {dim}")


def value(session: Session, viewer: Viewer, key: str, flt: Filters) -> int | Decimal | None:
    """The figure: an int (count, fen) or a Decimal rate (None when the denominator is 0)."""
    metric = METRICS[key]
    _check(metric, flt)
    if metric.ratio:
        num, den = session.execute(metric.query(session, viewer, flt, (metric.ratio[0](), metric.ratio[1]()))).one()
        return rate(int(num or 0), int(den or 0))
    return int(session.scalar(metric.query(session, viewer, flt, (metric.aggregate(),))) or 0)


def values(session: Session, viewer: Viewer, keys: tuple[str, ...], flt: Filters) -> dict[str, int | Decimal | None]:
    """Several figures, each equal to :func:`value`: the metrics that share one query (the same rows: FROM and
    WHERE) are computed in one SELECT, each aggregate a column of it — a dashboard's count and amount of the
    same loans read them once."""
    groups: dict[Query, list[Metric]] = {}
    for key in keys:
        metric = METRICS[key]
        _check(metric, flt)
        groups.setdefault(metric.query, []).append(metric)
    out: dict[str, int | Decimal | None] = {}
    for query, group in groups.items():
        columns = [c for m in group for c in ((m.ratio[0](), m.ratio[1]()) if m.ratio else (m.aggregate(),))]
        row = iter(session.execute(query(session, viewer, flt, tuple(columns))).one())
        for m in group:
            out[m.key] = rate(int(next(row) or 0), int(next(row) or 0)) if m.ratio else int(next(row) or 0)
    return {key: out[key] for key in keys}


def by_dimension(session: Session, viewer: Viewer, key: str, dimension: str, flt: Filters,
                 limit: int | None = None) -> list[tuple[Any, int]]:
    """The figure grouped by ``dimension``: largest first, a time dimension in time order."""
    return [(k[0], v) for k, v in by_dimensions(session, viewer, key, (dimension,), flt, limit)]


def by_dimensions(session: Session, viewer: Viewer, key: str, dimensions: tuple[str, ...], flt: Filters,
                  limit: int | None = None) -> list[tuple[tuple[Any, ...], int | Decimal | None]]:
    """The figure grouped by one or more dimensions (a cross-tab: one row per combination of values), in one
    ``SELECT … GROUP BY``. Ordered by the time dimension ascending when there is one, then largest first; a rate
    is its numerator over its denominator in each group, the groups with the largest base first."""
    metric = METRICS[key]
    _check(metric, flt)
    columns = [_time_bucket(session, metric, d) if d in TIME_DIMENSIONS else metric.dimensions[d]()
               for d in dimensions]
    aggregates = (metric.ratio[0](), metric.ratio[1]()) if metric.ratio else (metric.aggregate(),)
    stmt = metric.query(session, viewer, flt, (*columns, *aggregates))
    if metric.time is not None and metric.time.join is not None and any(d in TIME_DIMENSIONS for d in dimensions):
        stmt = metric.time.join(stmt)
    times = [c for c, d in zip(columns, dimensions, strict=True) if d in TIME_DIMENSIONS]
    stmt = stmt.group_by(*columns).order_by(*times, aggregates[-1].desc(), *columns)
    if limit:
        stmt = stmt.limit(limit)
    n = len(columns)
    if metric.ratio:
        return [(tuple(row[:n]), rate(int(row[n] or 0), int(row[n + 1] or 0))) for row in session.execute(stmt)]
    return [(tuple(row[:n]), int(row[n] or 0)) for row in session.execute(stmt)]


PERIODS = ("current", "previous")


@dataclass(frozen=True)
class Cube:
    """Metrics over the same rows computed together by :func:`cube`: one SELECT grouped by some dimensions (and,
    to compare, by the period). Each group keeps its raw aggregates — a count, an amount, a rate's numerator and
    denominator — so a total or a grouping by one of the dimensions is the sum of the groups' aggregates: every
    metric's aggregate is a ``count`` or a ``sum`` over distinct rows, which adds up across disjoint groups."""

    keys: tuple[str, ...]
    dimensions: tuple[str, ...]
    groups: dict[tuple[Any, ...], dict[str, tuple[int, ...]]]  # (period, *dimension values) -> key -> aggregates

    def _sums(self, key: str, period: str, at: int | None) -> dict[Any, list[int]]:
        """The groups' aggregates of ``key`` added up per value of the dimension at ``at`` (None: all together)."""
        out: dict[Any, list[int]] = {}
        for group, parts in self.groups.items():
            if group[0] == period:
                acc = out.setdefault(None if at is None else group[1 + at], [0] * len(parts[key]))
                for i, v in enumerate(parts[key]):
                    acc[i] += v
        return out

    @staticmethod
    def _figure(key: str, parts: list[int]) -> int | Decimal | None:
        return rate(parts[0], parts[1]) if METRICS[key].ratio else parts[0]

    def total(self, key: str, period: str = "current") -> int | Decimal | None:
        """The figure over every group: equal to :func:`value` for that period."""
        parts = self._sums(key, period, None).get(None) or [0, 0]
        return self._figure(key, parts)

    def by(self, key: str, dimension: str, *, limit: int | None = None,
           period: str = "current") -> list[tuple[Any, int | Decimal | None]]:
        """The figure by one of the cube's dimensions, largest first (then by value), like :func:`by_dimension`."""
        sums = self._sums(key, period, self.dimensions.index(dimension))
        rows = [(value_, self._figure(key, parts)) for value_, parts in sums.items()]
        rows.sort(key=lambda r: (-(r[1] or 0), r[0] is None, str(r[0])))
        return rows[:limit] if limit else rows


def time_of(query: Query) -> TimeColumn | None:
    """The date a query's period filter reads: the time column of a metric registered over that query."""
    return next((m.time for m in METRICS.values() if m.query is query and m.time is not None), None)


def _in_period(session: Session, time: TimeColumn, start: date) -> ColumnElement[Any]:
    """1 for a row of the period that begins on ``start``, 0 for one before it (of the previous period)."""
    column = time.column()
    bound: Any = clock.start_of_business_day(start) if time.instant else start
    return case((column >= bound, 1), else_=0)


def cube(session: Session, viewer: Viewer, keys: tuple[str, ...], dimensions: tuple[str, ...], flt: Filters, *,
         compare: bool = False) -> Cube:
    """Metrics over the same rows (one query object), grouped by ``dimensions``, in one SELECT. ``compare``: over
    the period and the previous one of the same length together (``Filters.previous``), told apart by the date
    the period filter reads — so a dashboard's cards with their change, its leaderboard and its chart by source
    read the disbursed loans once instead of four times."""
    group = [METRICS[k] for k in keys]
    query = group[0].query
    if any(m.query is not query for m in group):
        raise ValueError("a cube's metrics must share one query")
    for m in group:
        _check(m, flt)
    columns: list[ColumnElement[Any]] = []
    for d in dimensions:  # a rate lists no dimension of its own: its rows are those of a count beside it
        column = next((m.dimensions[d] for m in group if d in m.dimensions), None)
        if column is None:
            raise ValueError(f"metrics {', '.join(keys)} cannot be grouped by {d}")
        columns.append(column())
    wide = flt
    time = time_of(query) if compare else None
    if compare:
        if time is None:
            raise ValueError(f"metric {keys[0]} has no period to compare")
        wide = replace(flt, start=flt.previous().start)
        columns.insert(0, _in_period(session, time, flt.start))
    aggregates = [c for m in group for c in ((m.ratio[0](), m.ratio[1]()) if m.ratio else (m.aggregate(),))]
    stmt = query(session, viewer, wide, (*columns, *aggregates))
    if time is not None and time.join is not None:
        stmt = time.join(stmt)
    if columns:
        stmt = stmt.group_by(*columns)
    out: dict[tuple[Any, ...], dict[str, tuple[int, ...]]] = {}
    n = len(columns)
    for row in session.execute(stmt):
        dims, figures = tuple(row[:n]), iter(int(v or 0) for v in row[n:])
        key = ((PERIODS[0] if dims[0] else PERIODS[1]), *dims[1:]) if compare else ("current", *dims)
        out[key] = {m.key: tuple(next(figures) for _ in range(2 if m.ratio else 1)) for m in group}
    return Cube(tuple(keys), tuple(dimensions), out)


def display(value: int | Decimal | None, unit: str) -> str:
    """A figure as people read it: counts plain, money in yuan, rates in percent; no figure is a dash."""
    if value is None:
        return "—"
    if unit == "fen":
        return money.format_yuan(int(value))
    if unit == "rate":
        return f"{Decimal(value) * 100:.1f}%"
    return f"{int(value):,}"


def rate(numerator: int, denominator: int) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


# --- customers: the funnel (analytics.funnel: by cohort, leads created in the period; or by activity) --------

CUSTOMER_FILTERS = frozenset({"period", "department", "salesperson", "source", "source_detail", "region", "industry"})


def _customer_filter(flt: Filters, *, period: bool = True, **kw: Any) -> customer_queries.CustomerFilter:
    return customer_queries.CustomerFilter(
        created_from=flt.start if period else None, created_to=flt.end if period else None,
        owner_id=flt.owner_id, department_id=flt.department_id, source=flt.source, region=flt.region,
        owner_department_id=flt.owner_department_id, source_detail=flt.source_detail, industry=flt.industry, **kw)


# The customer's owner as a table of its own (an alias, so that the scope's subqueries over staff stay their own),
# joined only by a query whose columns read it: the 部门 dimension. A join, not a scalar subquery per row, which
# PostgreSQL answers by scanning the small staff table once per customer (85 ms for 8,000 leads, 14 ms by owner).
OWNER = aliased(Staff, name="owner_staff")


def _reads(columns: tuple[ColumnElement[Any], ...], table: Any) -> bool:
    return any(table in find_tables(getattr(c, "expression", c), check_columns=True) for c in columns)


def join_owner(stmt: Select, columns: tuple[ColumnElement[Any], ...]) -> Select:
    """``stmt`` (over Customer) with the customer's owner joined when ``columns`` read it (none: NULL, 公海)."""
    if not _reads(columns, inspect(OWNER).selectable):
        return stmt
    return stmt.outerjoin_from(Customer, OWNER, OWNER.id == Customer.owner_id)


def _customer_query(step: str) -> Query:
    def query(session: Session, viewer: Viewer, flt: Filters, columns: tuple[ColumnElement[Any], ...]) -> Select:
        stmt = customer_queries.filtered(session, viewer, _customer_filter(flt), (funnel.step_clause(step),))
        return join_owner(stmt.with_only_columns(*columns), columns)
    return query


def _customer_url(flt: Filters, *, period: bool = True, **extra: Any) -> str:
    params = {"created_from": flt.start.isoformat() if period else None,
              "created_to": flt.end.isoformat() if period else None,
              "owner_id": flt.owner_id, "department_id": flt.department_id, "source": flt.source,
              "region": flt.region, "owner_department_id": flt.owner_department_id,
              "source_detail": flt.source_detail, "industry": flt.industry, **extra}
    return "/console/customers?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _customer_drill(step: str) -> Callable[[Filters], str]:
    return lambda flt: _customer_url(flt, funnel=None if step == "lead" else step)


def funnel_url(step: str, flt: Filters, mode: str) -> str:
    """The customer list behind a funnel figure: a cohort's step, or the customers who reached it in the period."""
    if mode == "cohort" or step == "lead":
        return _customer_drill(step)(flt)
    return _customer_url(flt, period=False, funnel=step, funnel_mode="activity", funnel_from=flt.start.isoformat(),
                         funnel_to=flt.end.isoformat())


# What a dimension reads (a column, or a correlated scalar subquery, of the metric's own scoped query):
# department — the department the customer's owner sits in (OWNER, joined; NULL: 公海, no owner); its rows drill down with
# ``owner_department_id`` (the department itself), while the ``department_id`` filter takes the subtree.
# source_detail — Customer.source_detail exactly ("渠道码：<code> / <campaign>" from a WeCom channel code; analytics
# may not read bot's channel-code tables). industry — the qualification's industry, under the INDUSTRY_CHOICES name
# it starts with (crm.customer_queries.industry_key / industry_clause). funder / funder_type (loans, applications
# below) — a loan's contract's funder, an application's product's funder, and that funder's type.
CUSTOMER_DIMENSIONS: dict[str, Callable[[], ColumnElement[Any]]] = {
    "department": lambda: OWNER.department_id,
    "salesperson": lambda: Customer.owner_id, "source": lambda: Customer.source,
    "source_detail": lambda: Customer.source_detail, "region": lambda: Customer.region,
    "industry": lambda: customer_queries.industry_key(Customer.id),
}

CUSTOMER_CREATED = TimeColumn(lambda: Customer.created_at, instant=True)  # the cohort: leads created in the period
_LEADS = _customer_query("lead")  # one query object: the figures over a period's leads compute together (values)

for _step, _label in (("lead", "新增线索"), ("contacted", "已联系"), ("visited", "已上门"), ("applied", "已进件"),
                      ("approved", "已审批"), ("signed", "已签约"), ("disbursed", "已放款客户")):
    register(Metric(key=f"funnel_{_step}", label=_label, unit="count",
                    query=_LEADS if _step == "lead" else _customer_query(_step),
                    aggregate=lambda: func.count(Customer.id), dimensions=CUSTOMER_DIMENSIONS,
                    filters=CUSTOMER_FILTERS, drill=_customer_drill(_step), time=CUSTOMER_CREATED))

FUNNEL_PAIRS = tuple(zip(funnel.STEPS, funnel.STEPS[1:], strict=False))  # (previous step, step)


def _seconds(session: Session, later: Any, earlier: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _funnel_rows(session: Session, viewer: Viewer, flt: Filters, mode: str) -> tuple[Select, dict[str, Any]]:
    """The rows a funnel counts (customers joined to their rollup, scoped and filtered) and, per step, the
    condition for a row to count in it. Cohort: the period's leads, a step reached ever (the rollup's rows
    found by its ``lead_at``, the customer's creation, so a big cohort reads only its own rollup rows). Activity:
    the customers who reached some step in the period, a step counting those who reached it in the period."""
    if mode == "cohort":
        rows = customer_queries.filtered(session, viewer, _customer_filter(flt))
        counted = {step: funnel.reached_at(step).is_not(None) for step in funnel.STEPS}
        return rows.outerjoin(CustomerFunnel, and_(
            CustomerFunnel.customer_id == Customer.id,
            funnel.in_period(CustomerFunnel.lead_at, flt.start, flt.end))), counted
    counted = {step: funnel.in_period(funnel.reached_at(step), flt.start, flt.end) for step in funnel.STEPS[1:]}
    rows = customer_queries.filtered(session, viewer, _customer_filter(flt, period=False))
    return rows.join(CustomerFunnel, CustomerFunnel.customer_id == Customer.id).where(or_(*counted.values())), counted


def _pair_condition(counted: dict[str, Any], previous: str, step: str) -> ColumnElement[bool]:
    """A customer counted at ``step`` that reached ``previous`` first (steps reached out of order — applied
    online before any follow-up — have no time between them)."""
    later, earlier = funnel.reached_at(step), funnel.reached_at(previous)
    return and_(counted[step], earlier.is_not(None), later >= earlier)


def funnel_figures(session: Session, viewer: Viewer, flt: Filters,
                   mode: str = "cohort") -> tuple[dict[str, int], dict[str, float | None]]:
    """Every funnel step's figure, and per step after the lead the median time in seconds from the previous
    step (None without any), over the customers the step counts that reached the previous step before it.

    Cohort: the ``funnel_<step>`` metrics, in one pass over the period's leads joined to the rollup. Activity:
    the leads created in the period, then one pass over the customers who reached a step in the period. The
    medians: PostgreSQL's ``percentile_cont`` in that same pass; SQLite: one query per step pair (the middle
    rows by ``row_number``)."""
    _check(get("funnel_lead"), flt)
    if mode not in funnel.MODES:
        raise ValueError(f"unknown funnel mode {mode!r}")
    rows, counted = _funnel_rows(session, viewer, flt, mode)
    steps = [s for s in funnel.STEPS if s in counted]
    spans = {s: _seconds(session, funnel.reached_at(s), funnel.reached_at(p)) for p, s in FUNNEL_PAIRS}
    postgres = session.get_bind().dialect.name == "postgresql"
    columns = [func.count(case((counted[s], 1))) for s in steps]
    if postgres:
        columns += [func.percentile_cont(0.5).within_group(spans[s]).filter(_pair_condition(counted, p, s))
                    for p, s in FUNNEL_PAIRS]
    figures = session.execute(rows.with_only_columns(*columns)).one()
    counts = {s: int(n or 0) for s, n in zip(steps, figures, strict=False)}
    if mode == "activity":
        counts["lead"] = int(value(session, viewer, "funnel_lead", flt) or 0)
    if postgres:
        medians = {s: None if v is None else float(v)
                   for (_, s), v in zip(FUNNEL_PAIRS, figures[len(steps):], strict=True)}
    else:
        medians = {s: _median(session, rows.with_only_columns(spans[s].label("d")).where(
            _pair_condition(counted, p, s))) for p, s in FUNNEL_PAIRS}
    return {s: counts[s] for s in funnel.STEPS}, medians


def _median(session: Session, spans: Select) -> float | None:
    """The median of the one column ``d`` of ``spans`` (the mean of the two middle rows of an even count)."""
    inner = spans.subquery()
    ranked = select(inner.c.d, func.row_number().over(order_by=inner.c.d).label("rn"),
                    func.count().over().label("n")).subquery()
    median = session.scalar(select(func.avg(ranked.c.d)).where((2 * ranked.c.rn).between(ranked.c.n, ranked.c.n + 2)))
    return None if median is None else float(median)


def funnel_counts(session: Session, viewer: Viewer, flt: Filters, mode: str = "cohort") -> dict[str, int]:
    """Every funnel step's figure (:func:`funnel_figures`)."""
    return funnel_figures(session, viewer, flt, mode)[0]


def funnel_medians(session: Session, viewer: Viewer, flt: Filters, mode: str = "cohort") -> dict[str, float | None]:
    """Per step after the lead, the median seconds from the previous step (:func:`funnel_figures`)."""
    return funnel_figures(session, viewer, flt, mode)[1]


register(Metric(
    key="conversion_rate", label="线索放款转化率", unit="rate", query=_LEADS,
    aggregate=lambda: func.count(Customer.id), filters=CUSTOMER_FILTERS, dimensions=CUSTOMER_DIMENSIONS,
    ratio=(lambda: func.count(case((funnel.step_clause("disbursed"), Customer.id))), lambda: func.count(Customer.id)),
    time=CUSTOMER_CREATED,
    drill=_customer_drill("disbursed"),  # the numerator: the period's leads that reached 已放款
))


def _my_leads(session: Session, viewer: Viewer, flt: Filters, columns: tuple[ColumnElement[Any], ...]) -> Select:
    stmt = customer_queries.filtered(session, viewer, _customer_filter(flt, period=False, status="owned"))
    return join_owner(stmt.with_only_columns(*columns), columns)


register(Metric(key="owned_customers", label="私海客户", unit="count", query=_my_leads,
                aggregate=lambda: func.count(Customer.id), dimensions=CUSTOMER_DIMENSIONS,
                filters=CUSTOMER_FILTERS - {"period"},
                drill=lambda flt: _customer_url(flt, status="owned", created_from=None, created_to=None)))


def _followups_due(session: Session, viewer: Viewer, flt: Filters, columns: tuple[ColumnElement[Any], ...]) -> Select:
    stmt = customer_queries.filtered(session, viewer, _customer_filter(flt, period=False, next_followup_to=flt.end))
    return join_owner(stmt.with_only_columns(*columns), columns)


register(Metric(key="followups_due", label="待跟进（截至期末）", unit="count", query=_followups_due,
                aggregate=lambda: func.count(Customer.id), dimensions=CUSTOMER_DIMENSIONS,
                filters=CUSTOMER_FILTERS - {"period"},
                drill=lambda flt: _customer_url(flt, created_from=None, created_to=None,
                                                next_followup_to=flt.end.isoformat(), sort="followup_asc")))


# --- loans ---------------------------------------------------------------------------------------------------

LOAN_FILTERS = frozenset({"period", "department", "salesperson", "source", "source_detail", "region", "industry",
                          "product", "funder", "funder_type"})
LOAN_DIMENSIONS: dict[str, Callable[[], ColumnElement[Any]]] = {
    "department": lambda: OWNER.department_id,
    "salesperson": lambda: Customer.owner_id, "source": lambda: Customer.source,
    "source_detail": lambda: Customer.source_detail, "region": lambda: Customer.region,
    "industry": lambda: customer_queries.industry_key(Loan.customer_id),
    "funder": loans.funder_of, "funder_type": loans.funder_type_of, "bucket": lambda: Loan.bucket,
}


NO_DEPARTMENT = "//"  # a prefix no department path has ("/1/4/"): an unknown department matches nothing


def department_path(session: Session, department_id: int | None) -> str | None:
    if not department_id:
        return None
    path = session.scalar(select(Department.path).where(Department.id == department_id))
    return path if path is not None else NO_DEPARTMENT


def _loan_filter(session: Session, flt: Filters, *, period: bool, **kw: Any) -> loans.LoanFilter:
    return loans.LoanFilter(disbursed_from=flt.start if period else None, disbursed_to=flt.end if period else None,
                            owner_id=flt.owner_id, department_path=department_path(session, flt.department_id),
                            source=flt.source, region=flt.region, product_id=flt.product_id,
                            owner_department_id=flt.owner_department_id, source_detail=flt.source_detail,
                            industry=flt.industry, funder_id=flt.funder_id, funder_type=flt.funder_type, **kw)


def needs_customer(viewer: Viewer, lf: loans.LoanFilter, columns: tuple[ColumnElement[Any], ...] = ()) -> bool:
    """Whether a loan query must join the loan's customer: its scope, a filter or a column reads the customer.
    Otherwise (scope all, no customer filter — the risk and finance views; scope own, whose clause is over the
    loan alone: ``loans.visible_clause``) the join would change no row, every loan having its customer, and is
    left out (on a million customers it is most of the query's cost)."""
    return (viewer.scope not in ("all", "own")
            or lf.reads_customer
            or _reads(columns, Customer.__table__) or _reads(columns, inspect(OWNER).selectable))


def join_customer(stmt: Select, viewer: Viewer, lf: loans.LoanFilter,
                  columns: tuple[ColumnElement[Any], ...] = ()) -> Select:
    """The loan's customer joined when needed (:func:`needs_customer`), and the customer's owner when a column
    reads it (:func:`join_owner`)."""
    if not needs_customer(viewer, lf, columns):
        return stmt
    return join_owner(stmt.join(Customer, Customer.id == Loan.customer_id), columns)


def _loan_query(*, period: bool, **kw: Any) -> Query:
    def query(session: Session, viewer: Viewer, flt: Filters, columns: tuple[ColumnElement[Any], ...]) -> Select:
        lf = _loan_filter(session, flt, period=period, **kw)
        return join_customer(select(*columns).select_from(Loan), viewer, lf, columns).where(
            *loans.filter_clauses(viewer, lf))
    return query


def loan_url(flt: Filters, *, period: bool, **extra: Any) -> str:
    params = {"disbursed_from": flt.start.isoformat() if period else None,
              "disbursed_to": flt.end.isoformat() if period else None, "owner_id": flt.owner_id,
              "department_id": flt.department_id, "source": flt.source, "region": flt.region,
              "product_id": flt.product_id, "owner_department_id": flt.owner_department_id,
              "source_detail": flt.source_detail, "industry": flt.industry, "funder_id": flt.funder_id,
              "funder_type": flt.funder_type, **extra}
    return "/console/lending/loans?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _disbursed_amount() -> ColumnElement[Any]:
    return func.coalesce(func.sum(Loan.principal_amount), 0)


def _outstanding_principal() -> ColumnElement[Any]:
    rest = (select(func.coalesce(func.sum(LoanInstallment.principal_amount - LoanInstallment.paid_principal_amount), 0))
            .where(LoanInstallment.loan_id == Loan.id).correlate(Loan).scalar_subquery())
    return func.coalesce(func.sum(rest), 0)


DISBURSED_ON = TimeColumn(lambda: Disbursement.disbursement_date, instant=False,
                          join=lambda stmt: stmt.join(Disbursement, Disbursement.id == Loan.disbursement_id))

# one query object for the metrics over the same loans, so that ``values`` reads them in one SELECT
_DISBURSED = _loan_query(period=True)
_ACTIVE = _loan_query(period=False, status="active")
_OVERDUE = _loan_query(period=False, status="active", bucket="overdue")

register(Metric(key="disbursed_count", label="放款笔数", unit="count", query=_DISBURSED,
                aggregate=lambda: func.count(Loan.id), dimensions=LOAN_DIMENSIONS, filters=LOAN_FILTERS,
                drill=lambda flt: loan_url(flt, period=True), time=DISBURSED_ON))
register(Metric(key="disbursed_amount", label="放款金额", unit="fen", query=_DISBURSED,
                aggregate=_disbursed_amount, dimensions=LOAN_DIMENSIONS, filters=LOAN_FILTERS,
                drill=lambda flt: loan_url(flt, period=True), time=DISBURSED_ON))
register(Metric(key="active_loans", label="在贷笔数", unit="count", query=_ACTIVE,
                aggregate=lambda: func.count(Loan.id), dimensions=LOAN_DIMENSIONS,
                filters=LOAN_FILTERS - {"period"}, drill=lambda flt: loan_url(flt, period=False, status="active")))
register(Metric(key="outstanding_principal", label="在贷余额（本金）", unit="fen",
                query=_ACTIVE, aggregate=_outstanding_principal,
                dimensions=LOAN_DIMENSIONS, filters=LOAN_FILTERS - {"period"},
                drill=lambda flt: loan_url(flt, period=False, status="active")))
register(Metric(key="overdue_loans", label="逾期笔数", unit="count",
                query=_OVERDUE,
                aggregate=lambda: func.count(Loan.id), dimensions=LOAN_DIMENSIONS,
                filters=LOAN_FILTERS - {"period"},
                drill=lambda flt: loan_url(flt, period=False, status="active", bucket="overdue")))
register(Metric(key="overdue_principal", label="逾期余额（本金）", unit="fen",
                query=_OVERDUE, aggregate=_outstanding_principal,
                dimensions=LOAN_DIMENSIONS, filters=LOAN_FILTERS - {"period"},
                drill=lambda flt: loan_url(flt, period=False, status="active", bucket="overdue")))
register(Metric(key="overdue_rate", label="逾期率（笔数）", unit="rate", query=_ACTIVE,
                aggregate=lambda: func.count(Loan.id), filters=LOAN_FILTERS - {"period"},
                dimensions={k: v for k, v in LOAN_DIMENSIONS.items() if k != "bucket"},  # by bucket: 0% or 100%
                ratio=(lambda: func.count(case((Loan.bucket != "C", Loan.id))), lambda: func.count(Loan.id)),
                drill=lambda flt: loan_url(flt, period=False, status="active", bucket="overdue")))  # the numerator


def _due_installments(session: Session, viewer: Viewer, flt: Filters,
                      columns: tuple[ColumnElement[Any], ...]) -> Select:
    """Installments falling due in the period, of loans in the viewer's scope."""
    i = LoanInstallment
    lf = _loan_filter(session, flt, period=False)
    return (join_customer(select(*columns).select_from(i).join(Loan, Loan.id == i.loan_id), viewer, lf, columns)
            .where(i.due_date >= flt.start, i.due_date <= flt.end, *loans.filter_clauses(viewer, lf)))


def bill_url(flt: Filters, **extra: Any) -> str:
    """The bills list (还款账单) of the installments due in the period: its totals are the figure's due and paid."""
    params = {"due_from": flt.start.isoformat(), "due_to": flt.end.isoformat(), "owner_id": flt.owner_id,
              "department_id": flt.department_id, "source": flt.source, "region": flt.region,
              "product_id": flt.product_id, "owner_department_id": flt.owner_department_id,
              "source_detail": flt.source_detail, "industry": flt.industry, "funder_id": flt.funder_id,
              "funder_type": flt.funder_type, **extra}
    return "/console/lending/bills?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _installment_paid() -> ColumnElement[Any]:
    i = LoanInstallment
    return func.coalesce(func.sum(i.paid_principal_amount + i.paid_interest_amount + i.paid_fee_amount), 0)


def _installment_due() -> ColumnElement[Any]:
    i = LoanInstallment
    return func.coalesce(func.sum(i.principal_amount + i.interest_amount + i.fee_amount), 0)


DUE_ON = TimeColumn(lambda: LoanInstallment.due_date, instant=False)
DUE_DIMENSIONS = {k: v for k, v in LOAN_DIMENSIONS.items() if k != "bucket"}  # the loan's bucket now, not then

register(Metric(key="due_amount", label="期内到期应还", unit="fen", query=_due_installments, aggregate=_installment_due,
                dimensions=DUE_DIMENSIONS, filters=LOAN_FILTERS, time=DUE_ON, drill=bill_url))
register(Metric(key="collection_rate", label="回收率（期内到期已还）", unit="rate", query=_due_installments,
                aggregate=_installment_due, dimensions=DUE_DIMENSIONS, filters=LOAN_FILTERS,
                ratio=(_installment_paid, _installment_due), time=DUE_ON, drill=bill_url))


# --- applications --------------------------------------------------------------------------------------------

APPROVED = ("approved", "signed", "disbursed")


def _applications(session: Session, viewer: Viewer, flt: Filters, columns: tuple[ColumnElement[Any], ...]) -> Select:
    """Applications started in the period whose customer the viewer may see: the application list's clauses
    (``lending.application_list``), so the figure is the list's count."""
    af = application_list.ApplicationFilter(
        created_from=flt.start, created_to=flt.end, owner_id=flt.owner_id,
        department_path=department_path(session, flt.department_id), source=flt.source, region=flt.region,
        product_id=flt.product_id, owner_department_id=flt.owner_department_id, source_detail=flt.source_detail,
        industry=flt.industry, funder_id=flt.funder_id, funder_type=flt.funder_type)
    return join_owner(select(*columns).select_from(Application).join(Customer, Customer.id == Application.customer_id),
                      columns).where(*application_list.filter_clauses(viewer, af))


def application_url(flt: Filters, **extra: Any) -> str:
    """The application list (申请列表, not the board of open ones) of the applications started in the period."""
    params = {"view": "list", "created_from": flt.start.isoformat(), "created_to": flt.end.isoformat(),
              "owner_id": flt.owner_id, "department_id": flt.department_id, "source": flt.source,
              "region": flt.region, "product_id": flt.product_id, "owner_department_id": flt.owner_department_id,
              "source_detail": flt.source_detail, "industry": flt.industry, "funder_id": flt.funder_id,
              "funder_type": flt.funder_type, **extra}
    return "/console/lending/applications?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _application_funder() -> ColumnElement[Any]:
    """An application's funder: its product's (a correlated scalar subquery)."""
    return select(Product.funder_id).where(Product.id == Application.product_id).scalar_subquery()


def _application_funder_type() -> ColumnElement[Any]:
    return (select(Funder.funder_type).join(Product, Product.funder_id == Funder.id)
            .where(Product.id == Application.product_id).scalar_subquery())


APPLICATION_DIMENSIONS: dict[str, Callable[[], ColumnElement[Any]]] = {
    "department": lambda: OWNER.department_id,
    "salesperson": lambda: Customer.owner_id, "source_detail": lambda: Customer.source_detail,
    "industry": lambda: customer_queries.industry_key(Application.customer_id),
    "product": lambda: Application.product_id, "funder": _application_funder, "funder_type": _application_funder_type,
}
APPLIED_AT = TimeColumn(lambda: Application.created_at, instant=True)

register(Metric(key="applications", label="进件数", unit="count", query=_applications,
                aggregate=lambda: func.count(Application.id), filters=LOAN_FILTERS, time=APPLIED_AT,
                dimensions=APPLICATION_DIMENSIONS, drill=application_url))
register(Metric(key="approval_rate", label="审批通过率", unit="rate", query=_applications,
                aggregate=lambda: func.count(Application.id), filters=LOAN_FILTERS, time=APPLIED_AT,
                dimensions=APPLICATION_DIMENSIONS,
                ratio=(lambda: func.count(case((Application.status.in_(APPROVED), Application.id))),
                       lambda: func.count(case((Application.status.in_((*APPROVED, "rejected")), Application.id)))),
                drill=lambda flt: application_url(flt, status="decided")))  # the denominator: decided applications


def staff_names(session: Session, ids: list[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return dict(session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(wanted))).all())

