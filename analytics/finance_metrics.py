"""The finance center's figures (财务指标): fee revenue, receivables, deposits held, reimbursements to pay.

Each one aggregates the SELECT of the finance list it drills down to (``finance.settlements.listing_query``,
``finance.deposits.deposit_query``, ``finance.reimbursements.listing_query``), with the viewer's case scope
those lists apply, so the figure equals what the list shows. They honour the period only (the settlement's
disbursement date; the others are balances at the moment of reading) and group by funder type (资方类型).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, Select, func
from sqlalchemy.orm import Session

from analytics.metrics import Filters, Metric, TimeColumn, register
from crm.scope import Viewer
from finance import deposits, reimbursements, settlements
from finance.models import Deposit, Reimbursement, Settlement

__all__ = ["FINANCE_KEYS", "settlement_url"]

FINANCE_KEYS = ("fee_revenue", "settled_cases", "receivables", "deposits_held", "reimbursements_unpaid")


def _columns(stmt: Select[Any], columns: tuple[ColumnElement[Any], ...]) -> Select[Any]:
    return stmt.with_only_columns(*columns)


def _settlements(status: str, *, period: bool) -> Callable[..., Select[Any]]:
    def query(session: Session, viewer: Viewer, flt: Filters, columns: tuple[ColumnElement[Any], ...]) -> Select:  # noqa: ARG001
        stmt = settlements.listing_query(viewer, status=status, funder_type=None,
                                         since=flt.start if period else None, until=flt.end if period else None)
        return _columns(stmt, columns)
    return query


def settlement_url(flt: Filters | None, status: str, funder_type: str | None = None) -> str:
    params = {"status": status, "funder_type": funder_type,
              "since": flt.start.isoformat() if flt else None, "until": flt.end.isoformat() if flt else None}
    return "/console/finance/settlements?" + urlencode({k: v for k, v in params.items() if v})


def _fee_revenue() -> ColumnElement[Any]:
    """Net fee revenue of settled cases (finance.settlements.fee_revenue_of, less fees refunded after 结单)."""
    s = Settlement
    return func.coalesce(func.sum(s.total_due_amount + s.deposit_applied_amount - s.loan_repaid_amount
                                  - s.fee_refunded_amount), 0)


FUNDER_TYPE = {"funder_type": lambda: Settlement.funder_type}
SETTLED_ON = TimeColumn(lambda: Settlement.disbursed_date, instant=False)  # the period filter's date

register(Metric(key="fee_revenue", label="服务费收入（期内放款已结算）", unit="fen",
                query=_settlements("settled", period=True), aggregate=_fee_revenue, dimensions=FUNDER_TYPE,
                filters=frozenset({"period"}), drill=lambda flt: settlement_url(flt, "settled"), time=SETTLED_ON))
register(Metric(key="settled_cases", label="已结算案件", unit="count", query=_settlements("settled", period=True),
                aggregate=lambda: func.count(Settlement.id), dimensions=FUNDER_TYPE, filters=frozenset({"period"}),
                drill=lambda flt: settlement_url(flt, "settled"), time=SETTLED_ON))
register(Metric(key="receivables", label="应收未收（已收费待结单）", unit="fen",
                query=_settlements("charged", period=False),
                aggregate=lambda: func.coalesce(func.sum(Settlement.total_due_amount), 0), dimensions=FUNDER_TYPE,
                drill=lambda flt: settlement_url(None, "charged")))


def _deposits_held(session: Session, viewer: Viewer, flt: Filters,  # noqa: ARG001
                   columns: tuple[ColumnElement[Any], ...]) -> Select:
    return _columns(deposits.deposit_query(viewer, held=True), columns)


register(Metric(key="deposits_held", label="在持定金", unit="fen", query=_deposits_held,
                aggregate=lambda: func.coalesce(func.sum(Deposit.amount - Deposit.refunded_amount), 0),
                drill=lambda flt: "/console/finance/deposits?held=1"))


def _reimbursements_unpaid(session: Session, viewer: Viewer, flt: Filters,  # noqa: ARG001
                           columns: tuple[ColumnElement[Any], ...]) -> Select:
    return _columns(reimbursements.listing_query(viewer, status="confirmed"), columns)


register(Metric(key="reimbursements_unpaid", label="已确认待付报销", unit="fen", query=_reimbursements_unpaid,
                aggregate=lambda: func.coalesce(func.sum(Reimbursement.amount), 0),
                drill=lambda flt: "/console/finance/reimbursements?status=confirmed"))

