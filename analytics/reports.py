"""The report builder (自定义报表): a manager picks metrics from the metric registry, up to two dimensions to cut
them by (the second makes a cross-tab: a row per pair of values, e.g. 月份 × 来源), filters and a period, saves the
report and shares it with roles. The time dimension (按日 / 按周 / 按月) groups each metric by the date its period
filter counts it by, in business time; its rows come in time order.

Running a report is a few grouped queries of :mod:`analytics.metrics` — one ``SELECT aggregate … GROUP BY
dimension`` per metric, never a figure computed row by row — always for the viewer who runs it, within their data
scope (a salesperson running a report shared with the sales role sees their own numbers). Every cell carries the
drill-down URL of its metric with the row's dimension values added to the filters (a time row narrows the period to
its day / week / month), like the dashboards.

Bad input (an unknown metric or dimension, a metric that cannot be cut by the dimension or a filter, an unknown
salesperson …) is refused with a Chinese message and nothing is saved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics import finance_metrics, metrics, periods  # noqa: F401 - finance_metrics registers its metrics
from analytics.metrics import Filters
from analytics.models import Report
from core import audit, clock
from core.errors import NotFound, PermissionDenied, ValidationFailed
from crm.models import ROLE_LABELS, Department, Staff
from finance.models import FUNDER_KIND_LABELS
from lending.models import BUCKET_LABELS, FUNDER_TYPE_LABELS, Funder, Product

__all__ = ["BUILDER_ROLES", "COLUMN_LABELS", "DIMENSION_LABELS", "FILTER_LABELS", "SCHEDULES", "WEEKDAYS", "Cell", "ReportDraft",
           "ReportInvalid", "ReportNotFound", "Result", "Row", "can_edit", "can_run", "describe", "dimension_choices", "dimensions_of",
           "filters_of", "get_for_edit", "get_for_run", "metric_choices", "run", "runnable", "save", "time_buckets"]

BUILDER_ROLES = frozenset({"admin", "manager"})  # build, edit and share reports
DIMENSION_LABELS = {**metrics.TIME_DIMENSIONS, **metrics.DIMENSION_LABELS}
# a dimension's column header where its label (shown as 按日 …) does not read as one
COLUMN_LABELS = {"day": "日期", "week": "周（起始日）", "month": "月份"}
# the Filters fields a report saves -> the dimension name a metric lists in ``Metric.filters``
FILTER_FIELDS = {"department_id": "department", "owner_id": "salesperson", "source": "source",
                 "source_detail": "source_detail", "region": "region", "industry": "industry", "product_id": "product",
                 "funder_id": "funder", "funder_type": "funder_type"}
FILTER_LABELS = {"department": "部门", "salesperson": "业务员", "source": "来源", "source_detail": "渠道码/来源明细",
                 "region": "地区", "industry": "行业", "product": "产品", "funder": "资方", "funder_type": "资方类型"}
# a row's dimension value as a Filters field, for its drill-down (dimensions without one drill to the total's list).
# A 部门 row counts the customers whose owner sits in that department itself: its drill-down says the same
# (owner_department_id), not the department's subtree (department_id).
DRILL_FIELDS = {"department": "owner_department_id", "salesperson": "owner_id", "source": "source",
                "source_detail": "source_detail", "region": "region", "industry": "industry", "product": "product_id",
                "funder": "funder_id", "funder_type": "funder_type"}
TEXT_LIMITS = {"source_detail": 120}  # a text filter's longest value (the column's length); others 40
SCHEDULES = {"none": "不推送", "daily": "每天", "weekly": "每周"}
WEEKDAYS = {1: "周一", 2: "周二", 3: "周三", 4: "周四", 5: "周五", 6: "周六", 7: "周日"}
MAX_METRICS = 8
TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class ReportInvalid(ValidationFailed):
    code = "report_invalid"
    message = "报表设置不正确"


class ReportNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("报表不存在或未共享给您")


@dataclass
class ReportDraft:
    """What the form sends (ids already parsed; text trimmed by :func:`save`)."""

    name: str
    metrics: list[str]
    dimension: str | None = None
    second_dimension: str | None = None  # a cross-tab's second dimension
    period: str = periods.DEFAULT
    filters: dict[str, Any] = field(default_factory=dict)
    shared_roles: list[str] = field(default_factory=list)
    schedule: str = "none"
    schedule_weekday: int | None = None
    schedule_time: str | None = None
    chat_name: str | None = None
    chat_staff_ids: list[int] = field(default_factory=list)


def metric_choices() -> list[metrics.Metric]:
    return list(metrics.METRICS.values())


def dimension_choices() -> dict[str, str]:
    """Every dimension some metric can be cut by, with its label (the time ones first)."""
    keys = {d for m in metrics.METRICS.values() for d in metrics.dimensions_of(m)}
    return {k: DIMENSION_LABELS.get(k, k) for k in DIMENSION_LABELS if k in keys}


# --- validation and saving -------------------------------------------------------------------------------------


def _invalid(message: str) -> ReportInvalid:
    return ReportInvalid(message)


def _clean_filters(session: Session, raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in FILTER_FIELDS:
        value = raw.get(key)
        if value in (None, ""):
            continue
        if key in ("department_id", "owner_id", "product_id", "funder_id"):
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise _invalid(f"{FILTER_LABELS[FILTER_FIELDS[key]]}不正确") from None
            model = {"department_id": Department, "owner_id": Staff, "product_id": Product, "funder_id": Funder}[key]
            if session.get(model, value) is None:
                raise _invalid(f"所选{FILTER_LABELS[FILTER_FIELDS[key]]}不存在")
        elif key == "funder_type":
            value = str(value).strip()
            if value not in FUNDER_TYPE_LABELS:
                raise _invalid(f"未知的资方类型：{value[:20]}")
        else:
            value = str(value).strip()[:TEXT_LIMITS.get(key, 40)]
            if not value:
                continue
        out[key] = value
    unknown = set(raw) - set(FILTER_FIELDS)
    if unknown:
        raise _invalid(f"未知的筛选条件：{'、'.join(sorted(unknown))}")
    return out


def _validate(session: Session, draft: ReportDraft) -> dict[str, Any]:
    name = (draft.name or "").strip()
    if not name:
        raise _invalid("请填写报表名称")
    if len(name) > 60:
        raise _invalid("报表名称不能超过 60 个字")
    keys = list(dict.fromkeys(k.strip() for k in draft.metrics if k and k.strip()))
    if not keys:
        raise _invalid("请至少选择一个指标")
    if len(keys) > MAX_METRICS:
        raise _invalid(f"一个报表最多 {MAX_METRICS} 个指标")
    unknown = [k for k in keys if k not in metrics.METRICS]
    if unknown:
        raise _invalid(f"未知的指标：{'、'.join(unknown)}")
    dimension = (draft.dimension or "").strip() or None
    second = (draft.second_dimension or "").strip() or None
    if second is not None and dimension is None:
        raise _invalid("请先选择第一个分组维度，再选第二个")
    if second is not None and second == dimension:
        raise _invalid("两个分组维度不能相同")
    if dimension in metrics.TIME_DIMENSIONS and second in metrics.TIME_DIMENSIONS:
        raise _invalid("两个分组维度不能都是时间（按日、按周、按月只能选一个）")
    for dim in (d for d in (dimension, second) if d is not None):
        if dim not in dimension_choices():
            raise _invalid(f"未知的维度：{dim}")
        cannot = [metrics.get(k).label for k in keys if dim not in metrics.dimensions_of(metrics.get(k))]
        if cannot:
            raise _invalid(f"指标「{'」「'.join(cannot)}」不能按「{DIMENSION_LABELS[dim]}」分组，"
                           "请换一个维度或去掉这些指标")
    if draft.period not in periods.PERIODS:
        raise _invalid(f"未知的统计区间：{draft.period}")
    filters = _clean_filters(session, draft.filters)
    for key in filters:
        dim = FILTER_FIELDS[key]
        cannot = [metrics.get(k).label for k in keys if dim not in metrics.get(k).filters]
        if cannot:
            raise _invalid(f"指标「{'」「'.join(cannot)}」不能按「{FILTER_LABELS[dim]}」筛选")
    roles = sorted(set(draft.shared_roles))
    bad_roles = [r for r in roles if r not in ROLE_LABELS]
    if bad_roles:
        raise _invalid(f"未知的角色：{'、'.join(bad_roles)}")
    out = {"name": name, "metrics": keys, "dimension": dimension, "second_dimension": second,
           "period": draft.period, "filters": filters,
           "shared_roles": roles}
    return out | _validate_schedule(session, draft)


def _validate_schedule(session: Session, draft: ReportDraft) -> dict[str, Any]:
    if draft.schedule not in SCHEDULES:
        raise _invalid(f"未知的推送频率：{draft.schedule}")
    if draft.schedule == "none":
        return {"schedule": "none", "schedule_weekday": None, "schedule_time": None, "chat_name": None,
                "chat_staff_ids": []}
    time_text = (draft.schedule_time or "").strip()
    if not TIME_RE.match(time_text):
        raise _invalid("推送时间请填写为 时:分，如 09:00")
    weekday = None
    if draft.schedule == "weekly":
        if draft.schedule_weekday not in WEEKDAYS:
            raise _invalid("每周推送请选择星期几")
        weekday = draft.schedule_weekday
    chat_name = (draft.chat_name or "").strip()
    if not chat_name:
        raise _invalid("请填写推送群聊的名称")
    if len(chat_name) > 50:
        raise _invalid("群聊名称不能超过 50 个字")
    ids = sorted(set(draft.chat_staff_ids))
    members = session.scalars(select(Staff).where(Staff.id.in_(ids))).all() if ids else []
    if len(members) != len(ids):
        raise _invalid("所选群成员不存在")
    without = [m.display_name for m in members if not m.wecom_userid or m.status != "active"]
    if without:
        raise _invalid(f"群成员「{'」「'.join(without)}」未绑定企业微信或已离职")
    if len(members) < 2:
        raise _invalid("企业微信群聊至少需要 2 名成员")
    return {"schedule": draft.schedule, "schedule_weekday": weekday, "schedule_time": time_text,
            "chat_name": chat_name, "chat_staff_ids": ids}


def save(session: Session, viewer: Any, draft: ReportDraft, report_id: int | None = None) -> Report:
    """Create (``report_id`` None) or update a report; only builders (经理、管理员) may, and only their own
    reports unless admin. Refused input raises :class:`ReportInvalid` and nothing is written."""
    if viewer.role not in BUILDER_ROLES:
        raise PermissionDenied("只有经理和系统管理员可以创建和共享报表")
    values = _validate(session, draft)
    now = clock.now()
    if report_id is None:
        report = Report(owner_staff_id=viewer.staff_id, created_at=now, updated_at=now, **values)
        report.schedule_since = now if values["schedule"] != "none" else None
        session.add(report)
        session.flush()
        audit.record(session, "analytics.report_created", entity_type="analytics_report", entity_id=report.id,
                     after=values)
        return report
    report = get_for_edit(session, viewer, report_id)
    before = {k: getattr(report, k) for k in values}
    schedule_changed = any(before[k] != values[k] for k in ("schedule", "schedule_weekday", "schedule_time"))
    chat_changed = before["chat_name"] != values["chat_name"] or before["chat_staff_ids"] != values["chat_staff_ids"]
    for k, v in values.items():
        setattr(report, k, v)
    if schedule_changed:
        report.schedule_since = now if values["schedule"] != "none" else None
    if chat_changed:
        report.chat_id = None  # the bot makes the new chat on the next push
    report.updated_at = now
    session.flush()
    audit.record(session, "analytics.report_updated", entity_type="analytics_report", entity_id=report.id,
                 before=before, after=values)
    return report


# --- who may see what --------------------------------------------------------------------------------------------


def can_run(viewer: Any, report: Report) -> bool:
    return viewer.role == "admin" or report.owner_staff_id == viewer.staff_id or viewer.role in report.shared_roles


def can_edit(viewer: Any, report: Report) -> bool:
    return viewer.role in BUILDER_ROLES and (viewer.role == "admin" or report.owner_staff_id == viewer.staff_id)


def runnable(session: Session, viewer: Any) -> list[Report]:
    """The reports the viewer may run, newest first (their own, and those shared with their role)."""
    return [r for r in session.scalars(select(Report).order_by(Report.id.desc())) if can_run(viewer, r)]


def get_for_run(session: Session, viewer: Any, report_id: int) -> Report:
    report = session.get(Report, report_id)
    if report is None or not can_run(viewer, report):
        raise ReportNotFound()
    return report


def get_for_edit(session: Session, viewer: Any, report_id: int) -> Report:
    report = get_for_run(session, viewer, report_id)
    if not can_edit(viewer, report):
        raise PermissionDenied("只有报表的创建人或系统管理员可以修改此报表")
    return report


# --- running ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    value: int | Decimal | None
    url: str | None


@dataclass(frozen=True)
class Row:
    keys: tuple[Any, ...]  # the dimensions' values, one per dimension (empty: the totals row)
    labels: tuple[str, ...]  # the same as people read them ("合计" for the totals row)
    cells: list[Cell]

    @property
    def label(self) -> str:
        return " · ".join(self.labels)


@dataclass
class Result:
    report: Report
    filters: Filters
    columns: list[metrics.Metric]
    rows: list[Row]  # one per dimension value (or pair of values), or the single totals row
    totals: Row | None  # with a dimension: each metric over everything
    ran_at: datetime

    @property
    def dimensions(self) -> list[str]:
        return dimensions_of(self.report)

    @property
    def dimension_labels(self) -> list[str]:
        """The dimension columns' headers (one, two, or 合计 without a dimension)."""
        return [COLUMN_LABELS.get(d, DIMENSION_LABELS.get(d, d)) for d in self.dimensions] or ["合计"]

    @property
    def dimension_label(self) -> str:
        return " × ".join(self.dimension_labels)


def dimensions_of(report: Report) -> list[str]:
    return [d for d in (report.dimension, report.second_dimension) if d]


def filters_of(report: Report, today: Any = None) -> Filters:
    _, flt = periods.resolve(report.period, today)
    return replace(flt, **report.filters)


def _labels(session: Session, dimension: str, keys: list[Any]) -> dict[Any, str]:
    if dimension in metrics.TIME_DIMENSIONS:
        return {k: _time_label(dimension, k) for k in keys}
    if dimension == "salesperson":
        names = metrics.staff_names(session, keys)
        return {k: names.get(k, f"员工 #{k}") if k else "公海/未分配" for k in keys}
    if dimension in NAMED:
        model, blank = NAMED[dimension]
        wanted = [k for k in keys if k]
        names = (dict(session.execute(select(model.id, model.name).where(model.id.in_(wanted))).all())
                 if wanted else {})
        return {k: names.get(k, f"{DIMENSION_LABELS[dimension]} #{k}") if k else blank for k in keys}
    table = {"source": metrics.SOURCE_LABELS, "bucket": BUCKET_LABELS, "funder_type": FUNDER_KIND_LABELS}.get(dimension, {})
    blank = BLANK_LABELS.get(dimension, "未知")
    return {k: table.get(k, str(k)) if k not in (None, "") else blank for k in keys}


# dimensions whose values are ids: the table to name them from, and the label of no value
NAMED: dict[str, tuple[Any, str]] = {"product": (Product, "未知"), "funder": (Funder, "未知"),
                                     "department": (Department, "公海/未分配")}
BLANK_LABELS = {"source_detail": "无来源明细", "industry": "未填写行业"}


def _time_label(dimension: str, key: date | None) -> str:
    if key is None:
        return "未知"
    if dimension == "month":
        return f"{key.year}-{key.month:02d}"
    if dimension == "week":
        year, week, _ = key.isocalendar()
        return f"{year}-W{week:02d}（{key.month:02d}-{key.day:02d} 起）"
    return key.isoformat()


def _narrow(metric: metrics.Metric, flt: Filters, dimension: str, key: Any) -> Filters | str | None:
    """The filters of a row's drill-down with one dimension's value added: a time bucket narrows the period
    (within the report's own); a bucket (账期) is a query parameter of the loan list (returned as a URL suffix);
    None: the dimension has no filter on the list."""
    if key in (None, ""):
        return None
    if dimension in metrics.TIME_DIMENSIONS:
        first, last = metrics.bucket_span(dimension, key)
        return replace(flt, start=max(first, flt.start), end=min(last, flt.end))
    if dimension == "bucket" and metric.drill is not None and metric.drill(flt).startswith("/console/lending/loans"):
        return f"&bucket={key}"
    field_name = DRILL_FIELDS.get(dimension)
    if field_name is None or metrics.FILTER_FIELDS[field_name] not in metric.filters:
        return None  # the metric's list cannot be narrowed by it (the finance lists by funder type, for now)
    return replace(flt, **{field_name: key})


def _drill(metric: metrics.Metric, flt: Filters, dimensions: list[str], keys: tuple[Any, ...]) -> str | None:
    """The list behind a cell: the metric's drill-down with every dimension value of its row applied."""
    if metric.drill is None:
        return None
    suffix = ""
    for dimension, key in zip(dimensions, keys, strict=True):
        narrowed = _narrow(metric, flt, dimension, key)
        if narrowed is None:
            return None
        if isinstance(narrowed, str):
            suffix += narrowed
        else:
            flt = narrowed
    return metric.drill(flt) + suffix


def run(session: Session, viewer: Any, report: Report, today: Any = None) -> Result:
    """The report's figures for ``viewer`` (their data scope), over its period as of ``today``: one grouped
    query per metric (by one dimension, or by two for a cross-tab), rows in time order when a dimension is time,
    else in the first metric's order (largest first).

    By time, every day / week / month of the period has a row: a bucket without any figure gets a row of zeros
    (linked to its empty list). With a second dimension, only a time bucket that has no row at all gets one,
    its other dimension shown as "—": the missing combinations of a bucket that has rows are not filled in."""
    flt = filters_of(report, today)
    columns = [metrics.get(k) for k in report.metrics if k in metrics.METRICS]
    totals_cells = [Cell(metrics.value(session, viewer, m.key, flt), _drill(m, flt, [], ())) for m in columns]
    totals = Row((), ("合计",), totals_cells)
    dims = dimensions_of(report)
    if not dims:
        return Result(report, flt, columns, [totals], None, clock.now())
    grouped = [dict(metrics.by_dimensions(session, viewer, m.key, tuple(dims), flt)) for m in columns]
    order: list[tuple[Any, ...]] = list(dict.fromkeys(k for g in grouped for k in g))
    times = [i for i, d in enumerate(dims) if d in metrics.TIME_DIMENSIONS]
    blank: set[tuple[Any, ...]] = set()
    if times:  # metrics with rows in different buckets: merge in time order (stable: by value within a bucket)
        t = times[0]
        seen = {k[t] for k in order}
        blank = {tuple(b if i == t else None for i in range(len(dims)))
                 for b in time_buckets(dims[t], flt.start, flt.end) if b not in seen}
        order.extend(blank)
        order.sort(key=lambda k: (k[t] is None, k[t] or date.min))
    labels = [_labels(session, d, list(dict.fromkeys(k[i] for k in order if k not in blank or i in times)))
              for i, d in enumerate(dims)]
    rows = [Row(k, tuple(labels[i][v] if k not in blank or i in times else "—" for i, v in enumerate(k)),
                [Cell(g.get(k, None if m.unit == "rate" else 0), _drill(m, flt, dims, k))  # a rate without a base: —
                 for m, g in zip(columns, grouped, strict=True)])
            for k in order]
    return Result(report, flt, columns, rows, totals, clock.now())


def time_buckets(dimension: str, start: date, end: date) -> list[date]:
    """The keys of every day / ISO week / month bucket that meets ``start``…``end``, in time order (a week's and a
    month's key is its first day, which may precede ``start``)."""
    if dimension == "week":
        key = start - timedelta(days=start.weekday())
    elif dimension == "month":
        key = start.replace(day=1)
    else:
        key = start
    keys = []
    while key <= end:
        keys.append(key)
        key = metrics.bucket_span(dimension, key)[1] + timedelta(days=1)
    return keys


def describe(session: Session, report: Report) -> list[str]:
    """The report's settings in words (for its page and its pushes)."""
    parts = [f"统计区间：{periods.PERIODS.get(report.period, report.period)}"]
    if report.dimension:
        parts.append("按" + " × ".join(DIMENSION_LABELS.get(d, d) for d in dimensions_of(report)))
    names = {"department_id": lambda v: getattr(session.get(Department, v), "name", v),
             "owner_id": lambda v: getattr(session.get(Staff, v), "display_name", v),
             "product_id": lambda v: getattr(session.get(Product, v), "name", v),
             "funder_id": lambda v: getattr(session.get(Funder, v), "name", v),
             "funder_type": lambda v: FUNDER_KIND_LABELS.get(v, v),
             "source": lambda v: metrics.SOURCE_LABELS.get(v, v), "region": lambda v: v, "source_detail": lambda v: v,
             "industry": lambda v: v}
    for key, value in report.filters.items():
        parts.append(f"{FILTER_LABELS[FILTER_FIELDS[key]]}：{names[key](value)}")
    return parts
