"""A short-lived cache of the department- and company-scope home dashboards (issue 18 item 3).

A manager's or supervisor's dashboard counts over most of the customer table (~1.2 s on 1,000,000 customers);
fifty staff clicking through the console cannot each pay that. Their figures are kept for
``SCRM_DASHBOARD_CACHE_SECONDS`` (60 by default; 0 turns the cache off) in ``core.figure_cache`` (Redis when
``SCRM_REDIS_URL`` is set, shared by every server process; this process otherwise), and the page says when they
were computed (数据更新于 HH:MM:SS). A salesperson's own-scope dashboard is cheap and stays live.

The key is the viewer's whole scope identity: staff id, role, data scope, department and its path, and every
filter of the period. The staff id belongs to it because a department-scope viewer also sees the customers they
co-handle (``crm.customers.visible_clause``): two managers of one department are not the same scope when one of
them co-handles customers, and a figure computed for one of them must never be shown to another. A viewer who
co-handles nobody is keyed without it (``key_for``): their figures are their role's, scope's and department's. A Redis failure costs the cache, never the page.

The cache sits around ``dashboards.build`` and knows nothing of the widgets inside it.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from analytics import dashboards, periods
from analytics.metrics import Filters
from core import figure_cache, figure_refresh
from core.settings import get_settings
from crm import auth_service, customers, org_service
from crm.scope import Viewer

__all__ = ["build", "clear_local", "key_for"]

LIVE_SCOPES = {"own"}  # computed on every view
KEY_VERSION = 2  # bump when the Dashboard's shape changes: old entries are then never read


def key_for(viewer: Viewer, flt: Filters, funnel_mode: str = "cohort", *, co_handles: bool = True) -> str:
    """The cache key of ``viewer``'s dashboard over ``flt``: a hash of the exact scope identity and filters.

    ``co_handles=False``: the viewer co-handles no customer (``crm.customers.co_handles_any``), so their figures
    are those of their role, scope and department alone (every widget scopes through ``visible_clause`` and
    ``owner_filter``, which read the staff id for co-handled customers and for own scope only): two managers of
    one department who co-handle nobody share one entry."""
    identity = {"v": KEY_VERSION, "kind": dashboards.kind_for(viewer), "funnel_mode": funnel_mode,
                "staff_id": viewer.staff_id if co_handles else None,
                "role": viewer.role, "scope": viewer.scope, "department_id": viewer.department_id,
                "department_path": viewer.department_path,
                "filters": {f.name: _plain(getattr(flt, f.name)) for f in dataclasses.fields(flt)}}
    return figure_cache.make_key("dashboard", identity)


def build(session: Session, viewer: Viewer, flt: Filters, funnel_mode: str = "cohort", *,
          period: str | None = None) -> tuple[dashboards.Dashboard, datetime | None]:
    """The viewer's dashboard and when its figures were computed (None: live, computed now for this view).

    ``period``: the named period (``analytics.periods``) ``flt`` covers, for the home page. The landing view (the
    default period, the cohort funnel) is then watched (``core.figure_refresh``) and recomputed ahead of its
    expiry while the viewer keeps coming back. A period the viewer clicks to is computed on view and cached like
    any other: refreshing every period a boss once looked at would cost a dashboard per click, every 45 s."""
    target, built = _target(session, viewer, flt, funnel_mode)
    if target is None:
        return dashboards.build(session, viewer, flt, funnel_mode), None
    if period == periods.DEFAULT and funnel_mode == "cohort":
        figure_refresh.watch(REFRESH_KIND, {"staff_id": viewer.staff_id, "period": period,
                                            "funnel_mode": funnel_mode})
    at, payload = figure_cache.cached(target.key, target.ttl, target.compute)
    return (built[0] if built else _decode_board(payload, flt)), at


def _target(session: Session, viewer: Viewer, flt: Filters,
            funnel_mode: str) -> tuple[figure_refresh.Target | None, list[dashboards.Dashboard]]:
    """The cached figure of ``viewer``'s dashboard (None: live), and the list its computation leaves the board in."""
    ttl = get_settings().dashboard_cache_seconds
    if ttl <= 0 or viewer.scope in LIVE_SCOPES:
        return None, []
    key = key_for(viewer, flt, funnel_mode, co_handles=customers.co_handles_any(session, viewer))
    built: list[dashboards.Dashboard] = []

    def compute() -> str:
        built.append(dashboards.build(session, viewer, flt, funnel_mode))
        return _encode_board(built[0])

    return figure_refresh.Target(key, ttl, compute), built


def _resolve(session: Session, spec: dict[str, Any]) -> figure_refresh.Target | None:
    """A watched home dashboard as it is now (``core.figure_refresh``): the staff member's current scope, and the
    named period's dates today."""
    viewer = org_service.active_viewer(session, spec["staff_id"])
    if viewer is None:
        return None
    _, flt = periods.resolve(spec["period"])
    return _target(session, viewer, flt, spec["funnel_mode"])[0]


def _seed(session: Session) -> list[dict[str, Any]]:
    """The home dashboards of the staff with an open console session and a wider scope than their own."""
    return [{"staff_id": staff_id, "period": periods.DEFAULT, "funnel_mode": "cohort"}
            for staff_id in auth_service.staff_with_open_sessions(session, exclude_scopes=LIVE_SCOPES)]


REFRESH_KIND = "dashboard"
figure_refresh.register(REFRESH_KIND, _resolve, _seed)


def clear_local() -> None:
    """Forget the in-process entries (tests; a process starting afresh)."""
    figure_cache.clear_local()


# --- the Dashboard as JSON (Decimal, dates, tuples and cards kept as they were) --------------------------------

def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return value


def _enc(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"__decimal": str(value)}
    if isinstance(value, datetime):
        return {"__datetime": value.isoformat()}
    if isinstance(value, date):
        return {"__date": value.isoformat()}
    if isinstance(value, tuple):
        return {"__tuple": [_enc(v) for v in value]}
    if isinstance(value, list):
        return [_enc(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _enc(v) for k, v in value.items()}
        return {"__map": [[_enc(k), _enc(v)] for k, v in value.items()]}
    if isinstance(value, dashboards.Card):  # a FunnelStep is a Card with two more fields
        tag = "__step" if isinstance(value, dashboards.FunnelStep) else "__card"
        return {tag: {f.name: _enc(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"dashboard cache cannot keep a {type(value).__name__}")


def _dec(value: Any) -> Any:
    if isinstance(value, list):
        return [_dec(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, inner), = value.items()
        if tag == "__decimal":
            return Decimal(inner)
        if tag == "__datetime":
            return datetime.fromisoformat(inner)
        if tag == "__date":
            return date.fromisoformat(inner)
        if tag == "__tuple":
            return tuple(_dec(v) for v in inner)
        if tag == "__map":
            return {_dec(k): _dec(v) for k, v in inner}
        if tag == "__card":
            return dashboards.Card(**{k: _dec(v) for k, v in inner.items()})
        if tag == "__step":
            return dashboards.FunnelStep(**{k: _dec(v) for k, v in inner.items()})
    return {k: _dec(v) for k, v in value.items()}


def _encode_board(board: dashboards.Dashboard) -> str:
    return json.dumps({"kind": board.kind, "cards": _enc(board.cards), "funnel": _enc(board.funnel),
                       "funnel_mode": board.funnel_mode, "charts": _enc(board.charts)}, ensure_ascii=False)


def _decode_board(payload: str, flt: Filters) -> dashboards.Dashboard:
    data = json.loads(payload)
    return dashboards.Dashboard(data["kind"], flt, _dec(data["cards"]), _dec(data["funnel"]), data["funnel_mode"],
                                _dec(data["charts"]))
