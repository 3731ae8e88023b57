"""The figures of each role's dashboard (首页看板), as plain data for a channel to render.

- sales: my customers, follow-ups due, my funnel, my disbursements;
- supervisor / manager / admin: KPI cards with the change against the previous period, the funnel, the
  leaderboard (龙虎榜) by disbursed amount, leads and disbursements by source, the channel analysis with the cost
  per lead and per disbursed loan where a cost is recorded (``analytics.channel_costs``);
- finance: fee revenue and settled cases (with the change vs the previous period), receivables, deposits held,
  reimbursements to pay, revenue by funder type; the owner (admin, manager) sees the same money cards and chart;
- risk / collector: approval rate, overdue rate, collection rate, overdue principal by bucket; from the nightly
  snapshots, the overdue trend, roll rates and vintage curves, each point linked to the loans of its snapshot rows
  (``analytics.snapshot_drill``).

The funnel counts by cohort (the period's leads) or by activity (steps reached in the period), as the viewer
picks; each step with its conversion from the previous step and the median time from it (``analytics.funnel``).

Which dashboard a viewer gets follows their role; what it counts follows their data scope (metrics do that).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from analytics import channel_costs, finance_metrics, funnel, loan_history, metrics, snapshot_drill
from analytics.metrics import Filters
from crm.scope import Viewer
from finance.models import FUNDER_KIND_LABELS
from lending.models import BUCKET_LABELS, BUCKETS

__all__ = ["Card", "Dashboard", "FunnelStep", "Widget", "build", "kind_for", "widgets"]

SALES_ROLES = {"sales"}
MANAGER_ROLES = {"admin", "manager", "supervisor"}
RISK_ROLES = {"risk", "collector"}
FINANCE_ROLES = {"finance"}
OWNER_ROLES = {"admin", "manager"}  # the manager dashboard with the money cards


@dataclass(frozen=True)
class Card:
    key: str
    label: str
    unit: str
    value: int | Decimal | None
    previous: int | Decimal | None = None  # the same figure over the previous period, when it has one
    url: str | None = None  # drill-down

    @property
    def change(self) -> Decimal | None:
        """Relative change vs the previous period (counts, amounts) or the difference (rates)."""
        if self.previous is None or self.value is None:
            return None
        if self.unit == "rate":
            return Decimal(self.value) - Decimal(self.previous)
        if not self.previous:
            return None
        return metrics.rate(int(self.value) - int(self.previous), int(self.previous))


@dataclass(frozen=True)
class FunnelStep(Card):
    """A funnel step: its count, the conversion from the previous step (count / previous count) and the median
    time from the previous step (seconds), both None for the lead step or without a base."""

    conversion: Decimal | None = None
    median_seconds: float | None = None


@dataclass
class Dashboard:
    kind: str  # sales | manager | risk
    filters: Filters
    cards: list[Card] = field(default_factory=list)
    funnel: list[FunnelStep] = field(default_factory=list)
    funnel_mode: str = "cohort"  # analytics.funnel.MODES
    charts: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"title", "items": [(label, value, url)]}


def kind_for(viewer: Viewer) -> str:
    if viewer.role in SALES_ROLES:
        return "sales"
    if viewer.role in RISK_ROLES:
        return "risk"
    if viewer.role in FINANCE_ROLES:
        return "finance"
    return "manager"


def _card(session: Session, viewer: Viewer, key: str, flt: Filters, *, compare: bool = False) -> Card:
    return _cards(session, viewer, (key,), flt, compare=compare)[0]


def _comparable(keys: tuple[str, ...]) -> bool:
    """Whether the figures can be read for the period and the previous one in one SELECT (``metrics.cube``):
    over the same rows, with a date the period filter reads."""
    query = metrics.get(keys[0]).query
    return all(metrics.get(k).query is query for k in keys) and metrics.time_of(query) is not None


def _cards(session: Session, viewer: Viewer, keys: tuple[str, ...], flt: Filters, *,
           compare: bool = False, cube: metrics.Cube | None = None) -> list[Card]:
    """Cards whose figures are over the same rows: one SELECT for both periods (``metrics.cube``), or one per
    period (``metrics.values``); ``cube``: already computed with ``compare``."""
    if compare and (cube is not None or _comparable(keys)):
        cube = cube or metrics.cube(session, viewer, keys, (), flt, compare=True)
        current = {k: cube.total(k) for k in keys}
        previous = {k: cube.total(k, "previous") for k in keys}
    else:
        current = metrics.values(session, viewer, keys, flt)
        previous = metrics.values(session, viewer, keys, flt.previous()) if compare else {}
    cards = []
    for key in keys:
        metric = metrics.get(key)
        cards.append(Card(key, metric.label, metric.unit, current[key], previous.get(key),
                          metric.drill(flt) if metric.drill else None))
    return cards


def _funnel(session: Session, viewer: Viewer, flt: Filters, mode: str) -> list[FunnelStep]:
    counts, medians = metrics.funnel_figures(session, viewer, flt, mode)
    steps = []
    for previous, step in zip((None, *funnel.STEPS), funnel.STEPS, strict=False):
        metric = metrics.get(f"funnel_{step}")
        steps.append(FunnelStep(metric.key, metric.label, metric.unit, counts[step], None,
                                metrics.funnel_url(step, flt, mode),
                                conversion=metrics.rate(counts[step], counts[previous]) if previous else None,
                                median_seconds=medians.get(step)))
    return steps


def _grouped(session: Session, viewer: Viewer, key: str, dimension: str, flt: Filters, *,
             limit: int = 10) -> list[tuple[Any, int]]:
    return metrics.by_dimension(session, viewer, key, dimension, flt, limit=limit)


def _leaderboard(flt: Filters, rows: list[tuple[Any, Any]], names: dict[int, str]) -> dict[str, Any]:
    drill = metrics.get("disbursed_amount").drill
    assert drill is not None
    items = [(names.get(owner, "公海/未分配") if owner else "公海/未分配", amount,
              drill(replace(flt, owner_id=owner)) if owner else None) for owner, amount in rows]
    return {"title": "龙虎榜（放款金额）", "unit": "fen", "items": items}


def _by_source(flt: Filters, key: str, rows: list[tuple[Any, Any]], title: str, unit: str) -> dict[str, Any]:
    drill = metrics.get(key).drill
    assert drill is not None
    items = [(metrics.SOURCE_LABELS.get(source, source) if source else "未知", amount,
              drill(replace(flt, source=source)) if source else None) for source, amount in rows]
    return {"title": title, "unit": unit, "items": items}


@dataclass
class Part:
    """What a widget computing several blocks from one query returns: its cards and its charts, and figures a
    block computed from two widgets needs (``data``: the channel analysis reads the leads and the loans by
    source the two widgets computed, :func:`_channels`)."""

    cards: list[Card] = field(default_factory=list)
    charts: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


def _leads(session: Session, viewer: Viewer, flt: Filters) -> Part:
    """The period's leads and conversion (with the previous period) and the leads by source: one SELECT."""
    keys = ("funnel_lead", "conversion_rate")
    cube = metrics.cube(session, viewer, keys, ("source",), flt, compare=True)
    return Part(_cards(session, viewer, keys, flt, compare=True, cube=cube),
                {"leads_by_source": _by_source(flt, "funnel_lead", cube.by("funnel_lead", "source", limit=10),
                                               "新增线索按来源", "count")},
                {"leads_by_source": cube.by("funnel_lead", "source")})


def _loans(session: Session, viewer: Viewer, flt: Filters) -> Part:
    """The period's disbursed count and amount (with the previous period), the leaderboard (龙虎榜) by
    salesperson and the amount by source: one SELECT over the loans of both periods, by salesperson and source."""
    keys = ("disbursed_count", "disbursed_amount")
    cube = metrics.cube(session, viewer, keys, ("salesperson", "source"), flt, compare=True)
    leaders = cube.by("disbursed_amount", "salesperson", limit=10)
    names = metrics.staff_names(session, [owner for owner, _ in leaders])
    return Part(_cards(session, viewer, keys, flt, compare=True, cube=cube),
                {"leaderboard": _leaderboard(flt, leaders, names),
                 "disbursed_by_source": _by_source(flt, "disbursed_amount",
                                                   cube.by("disbursed_amount", "source", limit=10),
                                                   "放款金额按来源", "fen")},
                {"loans_by_source": cube.by("disbursed_count", "source")})


def _channels(session: Session, viewer: Viewer, flt: Filters, data: dict[str, Any]) -> dict[str, Any]:
    """The channel analysis (渠道来源分析): per channel the leads and the loans the two widgets above counted by
    source, the recorded cost, the cost per lead and per disbursed loan (one more SELECT: the costs)."""
    drill = metrics.get("funnel_lead").drill
    rows = channel_costs.analysis(data["leads_by_source"], data["loans_by_source"],
                                  channel_costs.costs_by_source(session, viewer, flt),
                                  url=lambda source: drill(replace(flt, source=source)) if drill else None)
    return _channel_table(rows)


def _channel_table(rows: list[channel_costs.ChannelRow]) -> dict[str, Any]:
    """The channel analysis as a table (``kind: table``: no chart; money in fen, a missing figure None)."""
    return {"title": "渠道来源分析（获客成本）", "unit": "fen", "kind": "table",
            # each count beside its unit cost, the total last: on a phone the unit costs show first
            "columns": ["渠道", "新增线索", "单线索成本", "放款笔数", "单笔放款成本", "渠道成本"],
            "units": ["text", "count", "fen", "count", "fen", "fen"],
            "rows": [[r.source, r.leads, r.per_lead, r.disbursed, r.per_disbursed, r.cost] for r in rows],
            "urls": [r.url for r in rows], "items": [],
            "note": "成本按渠道（来源）和日期录入（报表 → 渠道成本）；未录入成本的渠道不计算单位成本"}


def _buckets(session: Session, viewer: Viewer, flt: Filters) -> dict[str, Any]:
    amounts = dict(_grouped(session, viewer, "overdue_principal", "bucket", flt, limit=len(BUCKETS)))
    counts = dict(_grouped(session, viewer, "overdue_loans", "bucket", flt, limit=len(BUCKETS)))
    items = [(BUCKET_LABELS[b], amounts.get(b, 0), metrics.loan_url(flt, period=False, status="active", bucket=b),
              counts.get(b, 0)) for b in BUCKETS if b != "C"]
    return {"title": "逾期余额（本金）按账期", "unit": "fen", "items": items}


TREND_BUCKETS = ("M1", "M2", "M3", "M3+")


def _overdue_trend(session: Session, viewer: Viewer, flt: Filters) -> dict[str, Any]:
    """Overdue principal by bucket on each snapshot date of the last 30 days up to the period's end."""
    since = flt.end - timedelta(days=29)
    trend = loan_history.overdue_trend(session, viewer, since, flt.end, TREND_BUCKETS)
    days = sorted(trend)
    rebuilt = loan_history.backfilled_days(session, since, flt.end)
    series = [{"name": BUCKET_LABELS[b], "data": [trend[d].get(b, 0) for d in days],
               "urls": [snapshot_drill.link(as_of=d, snapshot_bucket=b) for d in days]}
              for b in TREND_BUCKETS]
    last = trend[days[-1]] if days else {}
    items = [(BUCKET_LABELS[b], last.get(b, 0), snapshot_drill.link(as_of=days[-1], snapshot_bucket=b))
             for b in TREND_BUCKETS] if days else []
    return {"title": "逾期余额趋势（日快照，近 30 天）", "unit": "fen", "kind": "line",
            "x": [d.isoformat()[5:] for d in days], "series": series, "items": items,
            "note": (f"最近快照 {days[-1].isoformat()}，表内为当日各账期余额"
                     + (f"；其中 {rebuilt} 天为事后补录（由还款记录重建）" if rebuilt else "")
                     if days else "暂无日快照（每日日终后自动生成）")}


def _roll_rates(session: Session, viewer: Viewer, flt: Filters) -> dict[str, Any]:
    """Roll rates between the last snapshot of the period and the one 30 days before it."""
    window = loan_history.roll_window(session, flt.end)
    items: list[tuple[Any, ...]] = []
    title = "迁徙率（按本金，间隔 30 天）"
    if window:
        first, second = window
        title = f"迁徙率（按本金，{first.isoformat()} → {second.isoformat()}）"
        for r in loan_history.roll_rates(session, viewer, first, second):
            if r.principal:
                nxt = BUCKETS[BUCKETS.index(r.bucket) + 1]
                rolled = snapshot_drill.link(as_of=first, snapshot_bucket=r.bucket, to_as_of=second,
                                             to_bucket=snapshot_drill.WORSE)
                items.append((f"{r.bucket}→{nxt}", r.rate, rolled, r.rolled_loans))
    note = "读取日快照，不随今日数据变化" if window else "需要相隔 30 天的两次日快照（每日日终后自动生成）"
    return {"title": title, "unit": "rate", "items": items, "note": note}


def _vintages(session: Session, viewer: Viewer, flt: Filters) -> dict[str, Any]:
    """Vintage curves of the last 12 disbursement months (M1+ principal / principal disbursed)."""
    curves = loan_history.vintages(session, viewer, flt.end)
    longest = max((mob for points in curves.values() for mob, _ in points), default=0)
    ends = loan_history.month_ends(session, min(curves), flt.end) if curves else {}

    def point_url(month: date, mob: int) -> str | None:
        """The loans of the vintage overdue (M1 and worse) at the month-end snapshot of that month on book."""
        day = ends.get(loan_history.add_months(month, mob))
        return snapshot_drill.link(as_of=day, snapshot_bucket="overdue", vintage=month) if day else None

    series, items = [], []
    for month, points in curves.items():
        by_mob = dict(points)
        mobs = range(1, longest + 1)
        series.append({"name": month.strftime("%Y-%m"), "data": [by_mob.get(m) for m in mobs],
                       "urls": [point_url(month, m) if m in by_mob else None for m in mobs]})
        if points:
            items.append((f"{month.strftime('%Y-%m')} 放款（MOB{points[-1][0]}）", points[-1][1],
                          point_url(month, points[-1][0])))
    note = "按放款月份，读取各月末的日快照" if longest else "需要放款月之后的月末日快照（每日日终后自动生成）"
    return {"title": "账龄曲线（M1+ 逾期本金 / 放款本金）", "unit": "rate", "kind": "line",
            "x": [f"MOB{m}" for m in range(1, longest + 1)], "series": series, "items": items, "note": note}


@dataclass(frozen=True)
class Widget:
    """One block of a dashboard: a card, the funnel or a chart, computed by its own queries."""

    name: str
    slot: str  # cards | funnel | charts | parts (a Part: cards and charts from one query)
    compute: Callable[[Session], Any]


def widgets(viewer: Viewer, flt: Filters, funnel_mode: str = "cohort") -> list[Widget]:
    """The widgets of the viewer's dashboard, in display order (the page runs them all; the bench times each)."""
    kind = kind_for(viewer)
    snapshot = Filters(start=flt.start, end=flt.end, department_id=flt.department_id, owner_id=flt.owner_id,
                       source=flt.source, region=flt.region)

    def card(key: str, f: Filters, *, compare: bool = False) -> Widget:
        return Widget(key, "cards", lambda s: _card(s, viewer, key, f, compare=compare))

    def cards(keys: tuple[str, ...], f: Filters, *, compare: bool = False) -> Widget:
        """Cards over the same rows, one widget (one SELECT per period); shown in ``CARD_ORDER``."""
        return Widget("+".join(keys), "cards", lambda s: _cards(s, viewer, keys, f, compare=compare))

    def chart(name: str, fn: Callable[[Session], dict[str, Any]]) -> Widget:
        return Widget(name, "charts", fn)

    funnel_widget = Widget("funnel", "funnel", lambda s: _funnel(s, viewer, flt, funnel_mode))
    period = Filters(start=flt.start, end=flt.end)  # the finance figures take the period only
    money = [card("fee_revenue", period, compare=True), card("receivables", period), card("deposits_held", period)]
    revenue_chart = chart("revenue_by_funder_type", lambda s: _revenue_by_funder_type(s, viewer, period))
    if kind == "finance":
        return [card("fee_revenue", period, compare=True), card("settled_cases", period, compare=True),
                card("receivables", period), card("deposits_held", period), card("reimbursements_unpaid", period),
                revenue_chart]
    if kind == "sales":
        return [card("owned_customers", snapshot), card("followups_due", snapshot),
                card("funnel_lead", flt, compare=True),
                cards(("disbursed_count", "disbursed_amount"), flt, compare=True), funnel_widget]
    if kind == "manager":
        return [Widget("leads+conversion+leads_by_source", "parts", lambda s: _leads(s, viewer, flt)),
                cards(("applications", "approval_rate"), flt, compare=True),
                Widget("disbursed+leaderboard+disbursed_by_source", "parts", lambda s: _loans(s, viewer, flt)),
                card("overdue_rate", snapshot), funnel_widget,
                *((*money, revenue_chart) if viewer.role in OWNER_ROLES else ())]
    return [card("approval_rate", flt, compare=True),
            cards(("active_loans", "outstanding_principal", "overdue_rate"), snapshot),
            cards(("overdue_loans", "overdue_principal"), snapshot),
            card("collection_rate", flt, compare=True),
            chart("buckets", lambda s: _buckets(s, viewer, snapshot)),
            chart("overdue_trend", lambda s: _overdue_trend(s, viewer, flt)),
            chart("roll_rates", lambda s: _roll_rates(s, viewer, flt)),
            chart("vintages", lambda s: _vintages(s, viewer, flt))]


def _revenue_by_funder_type(session: Session, viewer: Viewer, flt: Filters) -> dict[str, Any]:
    items = [(FUNDER_KIND_LABELS.get(kind, kind), amount, finance_metrics.settlement_url(flt, "settled", kind))
             for kind, amount in _grouped(session, viewer, "fee_revenue", "funder_type", flt)]
    return {"title": "服务费收入按资方类型", "unit": "fen", "items": items}


# The cards' display order where a widget computes several together (the others keep their widget's order).
CARD_ORDER = {"manager": ("funnel_lead", "applications", "disbursed_count", "disbursed_amount", "conversion_rate",
                          "approval_rate", "overdue_rate"),
              "risk": ("approval_rate", "active_loans", "outstanding_principal", "overdue_loans", "overdue_principal",
                       "overdue_rate", "collection_rate")}


# The charts' display order where a widget computes several together.
CHART_ORDER = {"manager": ("leaderboard", "leads_by_source", "disbursed_by_source", "channels",
                           "revenue_by_funder_type")}


def build(session: Session, viewer: Viewer, flt: Filters, funnel_mode: str = "cohort") -> Dashboard:
    if funnel_mode not in funnel.MODES:
        raise ValueError(f"unknown funnel mode {funnel_mode!r}")
    board = Dashboard(kind_for(viewer), flt, funnel_mode=funnel_mode)
    data: dict[str, Any] = {}  # what the widgets' parts pass on to a block built from two of them
    for widget in widgets(viewer, flt, funnel_mode):
        result = widget.compute(session)
        if widget.slot == "cards":
            board.cards.extend(result if isinstance(result, list) else [result])
        elif widget.slot == "parts":
            board.cards.extend(result.cards)
            board.charts.update(result.charts)
            data.update(result.data)
        elif widget.slot == "funnel":
            board.funnel = result
        else:
            board.charts[widget.name] = result
    if "leads_by_source" in data and "loans_by_source" in data:
        board.charts["channels"] = _channels(session, viewer, flt, data)
    order = CARD_ORDER.get(board.kind, ())
    board.cards.sort(key=lambda c: order.index(c.key) if c.key in order else len(order))  # stable
    charts = CHART_ORDER.get(board.kind, ())
    board.charts = dict(sorted(board.charts.items(),
                               key=lambda kv: charts.index(kv[0]) if kv[0] in charts else len(charts)))
    return board
