"""Channel costs (渠道成本) and the channel analysis (渠道来源分析): what each lead channel cost, and per channel
the leads, the loans disbursed, the cost per lead and per disbursed loan.

A cost belongs to a customer source (来源, stored as its label: ``crm.sources.label``, so 小程序 and
``miniprogram`` are one channel) and to a business date; optionally to the department that bought it. Who sees
a cost follows the viewer's data scope as the figures beside it do: scope all (or the department scope of the
top department) sees every cost; a lower department scope the costs of its department and those below (not the
company's own, which no department's leads carry alone); scope own none. A cost is never edited: a wrong one is voided (who, when, why — audit-logged) and entered
again, so the figures of a past period change only visibly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, false, func, select, true
from sqlalchemy.orm import Session

from analytics import metrics
from analytics.metrics import Filters
from analytics.models import ChannelCost
from core import audit, clock, money
from core.errors import NotFound, PermissionDenied, ValidationFailed
from crm import sources
from crm.models import Department, Role
from crm.permissions import permission
from crm.scope import Viewer

__all__ = ["COST_EDITORS", "ChannelRow", "analysis", "company_wide", "costs_by_source", "default_day", "listing",
           "record", "void"]

COST_EDITORS = permission("analytics.channel_costs", "渠道成本", "录入、作废渠道获客成本（按来源、日期）",
                          {Role.ADMIN, Role.MANAGER, Role.FINANCE}, group="报表")
MAX_COST_FEN = 10_000_000_000  # 1 亿元: one cost line above this is a typing mistake


def company_wide(viewer: Viewer) -> bool:
    """Whether the viewer's scope is the whole company: scope all, or the department scope of the top department
    (its path has one level, "/1/")."""
    return viewer.scope == "all" or (viewer.scope == "department" and viewer.department_path.count("/") == 2)


def _in_subtree(path: str) -> ColumnElement[bool]:
    """Costs of the department at ``path`` and the departments below it."""
    return ChannelCost.department_id.in_(
        select(Department.id).where(Department.path.startswith(path, autoescape=True)))


def _visible(viewer: Viewer) -> ColumnElement[bool]:
    if company_wide(viewer):
        return true()
    if viewer.scope != "department":
        return false()
    return _in_subtree(viewer.department_path)


def _department_ok(session: Session, viewer: Viewer, department_id: int | None) -> None:
    if department_id is None:
        if not company_wide(viewer):
            raise ValidationFailed("请选择部门：公司整体的成本只有全公司范围的账号可以录入", field="department_id")
        return
    path = session.scalar(select(Department.path).where(Department.id == department_id))
    if path is None:
        raise ValidationFailed("部门不存在", field="department_id")
    if not company_wide(viewer) and not path.startswith(viewer.department_path):
        raise ValidationFailed("只能录入本部门及下级部门的成本", field="department_id")


def record(session: Session, viewer: Viewer, *, source: str, spent_on: str | date, amount: str,
           department_id: int | None = None, note: str | None = None) -> ChannelCost:
    """Enter one cost. Refused with a Chinese message naming the field: no source, a bad or future date, an
    amount not in yuan text, zero or above 1 亿元, a department outside the viewer's scope."""
    if viewer.role not in COST_EDITORS:
        raise PermissionDenied("没有录入渠道成本的权限")
    label = sources.label(source) if (source or "").strip() else ""
    if not label or label == "—":
        raise ValidationFailed("请填写渠道（来源）", field="source")
    if len(label) > 40:
        raise ValidationFailed("渠道名称最多 40 个字", field="source")
    if isinstance(spent_on, str):
        try:
            spent_on = date.fromisoformat(spent_on.strip())
        except ValueError:
            raise ValidationFailed("日期无效，请使用 YYYY-MM-DD 格式", field="spent_on") from None
    if spent_on > clock.today():
        raise ValidationFailed("成本日期不能晚于今天", field="spent_on")
    fen = money.parse_yuan_text(amount, label="金额", field="amount", max_fen=MAX_COST_FEN)
    if not fen:
        raise ValidationFailed("请填写大于 0 的金额", field="amount")
    _department_ok(session, viewer, department_id)
    text = (note or "").strip() or None
    if text and len(text) > 200:
        raise ValidationFailed("备注最多 200 个字", field="note")
    cost = ChannelCost(source=label, spent_on=spent_on, amount=fen, department_id=department_id, note=text,
                       created_by_staff_id=viewer.staff_id, created_at=clock.now())
    session.add(cost)
    session.flush()
    audit.record(session, "analytics.channel_cost.record", entity_type="channel_cost", entity_id=cost.id,
                 after={"source": label, "spent_on": spent_on.isoformat(), "amount": fen,
                        "department_id": department_id})
    return cost


def void(session: Session, viewer: Viewer, cost_id: int, reason: str) -> ChannelCost:
    """Void a cost the viewer may see (its figures leave every period); the reason is required."""
    if viewer.role not in COST_EDITORS:
        raise PermissionDenied("没有作废渠道成本的权限")
    cost = session.scalar(select(ChannelCost).where(ChannelCost.id == cost_id, _visible(viewer))
                          .with_for_update())
    if cost is None:
        raise NotFound("成本记录不存在")
    if cost.voided_at is not None:
        raise ValidationFailed("该成本已作废", field="reason")
    text = (reason or "").strip()
    if not text:
        raise ValidationFailed("请填写作废原因", field="reason")
    cost.voided_at, cost.voided_by_staff_id, cost.void_reason = clock.now(), viewer.staff_id, text[:200]
    session.flush()
    audit.record(session, "analytics.channel_cost.void", entity_type="channel_cost", entity_id=cost.id,
                 before={"amount": cost.amount}, detail=text[:200])
    return cost


def listing(session: Session, viewer: Viewer, start: date, end: date) -> list[ChannelCost]:
    """The costs of the period the viewer may see, voided ones included (shown struck through), newest day first."""
    return list(session.scalars(select(ChannelCost).where(
        _visible(viewer), ChannelCost.spent_on >= start, ChannelCost.spent_on <= end)
        .order_by(ChannelCost.spent_on.desc(), ChannelCost.id.desc())))


def costs_by_source(session: Session, viewer: Viewer, flt: Filters) -> dict[str, int]:
    """The period's costs per channel label, in fen (voided ones left out), within the viewer's scope, the
    filter's department (its subtree) and source; none when the filter names a salesperson or a region."""
    if flt.owner_id or flt.region:
        return {}  # a cost is a channel's, not a salesperson's or a region's: no share of it is known
    conditions = [_visible(viewer), ChannelCost.voided_at.is_(None), ChannelCost.spent_on >= flt.start,
                  ChannelCost.spent_on <= flt.end]
    if flt.source:
        conditions.append(ChannelCost.source == sources.label(flt.source))
    path = metrics.department_path(session, flt.department_id)
    if path:
        conditions.append(_in_subtree(path))
    rows = session.execute(select(ChannelCost.source, func.sum(ChannelCost.amount)).where(*conditions)
                           .group_by(ChannelCost.source))
    return {source: int(total) for source, total in rows}


@dataclass(frozen=True)
class ChannelRow:
    source: str  # the label
    leads: int
    disbursed: int  # loans disbursed in the period, of customers from this channel
    cost: int | None  # fen; None: no cost recorded for the channel in the period
    url: str | None = None  # the channel's leads

    @property
    def per_lead(self) -> int | None:
        return _per(self.cost, self.leads)

    @property
    def per_disbursed(self) -> int | None:
        return _per(self.cost, self.disbursed)


def _per(cost: int | None, n: int) -> int | None:
    """Cost per unit in fen, rounded half up; None without a cost or a unit."""
    if cost is None or not n:
        return None
    return int((Decimal(cost) / n).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def analysis(leads: list[tuple[Any, Any]], disbursed: list[tuple[Any, Any]], costs: dict[str, int],
             url: Any = None) -> list[ChannelRow]:
    """One row per channel label from the leads and the disbursed loans by source (as stored: a code and its
    label are added together) and the costs by label; most leads first. ``url(source)``: the leads' list."""
    by_label: dict[str, list[int]] = {}
    spelled: dict[str, str] = {}
    for at, rows in ((0, leads), (1, disbursed)):
        for source, n in rows:
            label = sources.label(source) if source else "未知"
            by_label.setdefault(label, [0, 0])[at] += int(n or 0)
            spelled.setdefault(label, source)
    for label in costs:
        by_label.setdefault(label, [0, 0])
    out = [ChannelRow(label, n[0], n[1], costs.get(label), url(spelled[label]) if url and spelled.get(label) else None)
           for label, n in by_label.items()]
    return sorted(out, key=lambda r: (-r.leads, -r.disbursed, r.source))


def default_day(today: date | None = None) -> date:
    """The date the entry form proposes: yesterday (a day's spend is known the next morning)."""
    return (today or clock.today()) - timedelta(days=1)
