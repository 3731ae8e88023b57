"""The bills list (还款计划/账单): every loan's installments the viewer may see, by due date and state, with the
totals due and paid over the whole filtered set — where a collection rate (期内到期已还 / 期内到期应还) drills to.

The loan filters are the loan list's (``lending_loans.LOAN_FILTER_KEYS``: owner, department, source, region,
product, status, bucket), parsed by its parser; the bill's own are the due date range and the state.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from admin.console.lending_loans import LOAN_FILTER_KEYS, loan_filter_from_query
from admin.deps import ConsoleUser, CurrentUser, render
from admin.pagination import counted, page_number
from analytics import export_jobs
from core.errors import ValidationFailed
from core.web import SessionDep
from lending import contracts
from lending.models import INSTALLMENT_STATUS_LABELS
from lending.servicing import bills

router = APIRouter(prefix="/console/lending", include_in_schema=False)

PAGE_SIZE = 50
BILL_KEYS = ("due_from", "due_to", "state")
# loan filters the bills list takes (a snapshot's drill-down is the loan list's own)
LOAN_KEYS = tuple(k for k in LOAN_FILTER_KEYS if k in ("status", "bucket", "disbursed_from", "disbursed_to",
                                                        "owner_id", "department_id", "source", "region",
                                                        "product_id", "owner_department_id", "source_detail",
                                                        "industry", "funder_id", "funder_type"))


def _date(raw: str | None, field: str, label: str) -> date | None:
    raw = (raw or "").strip()
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        raise ValidationFailed(f"{label}格式不正确：{raw}", field=field) from None


def _bill_filter(session: Session, q: Any) -> tuple[bills.BillFilter, dict[str, str]]:
    """The bills' filters from the query string (the dashboards' drill-down links use the same names)."""
    loan_flt, _ = loan_filter_from_query(session, q)
    state = (q.get("state") or "").strip() or None
    if state is not None and state not in bills.BILL_STATES:
        raise ValidationFailed("未知的账单状态", field="state")
    flt = bills.BillFilter(due_from=_date(q.get("due_from", ""), "due_from", "到期开始日期"),
                           due_to=_date(q.get("due_to", ""), "due_to", "到期结束日期"), state=state, loan=loan_flt)
    params = {k: str(q.get(k)).strip() for k in (*BILL_KEYS, *LOAN_KEYS) if (q.get(k) or "").strip()}
    return flt, params


@router.get("/bills")
def bill_list(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    flt, params = _bill_filter(session, request.query_params)
    number = page_number(request.query_params.get("page"))
    total = bills.totals(session, user.viewer, flt)
    page = counted(number, total.count, "/console/lending/bills", params, size=PAGE_SIZE)
    rows = bills.list_bills(session, user.viewer, flt, limit=PAGE_SIZE, offset=page.offset)
    hidden = {k: v for k, v in params.items() if k not in BILL_KEYS}  # the loan filters a drill-down brought
    return render(request, "lending/bills.html", {
        "rows": rows, "totals": total, "page": page, "filters": {k: params.get(k, "") for k in BILL_KEYS},
        "hidden_filters": hidden, "states": bills.BILL_STATES, "status_labels": INSTALLMENT_STATUS_LABELS,
        "mask_name": contracts.mask_name, "export_params": params,
        "clear_url": "/console/lending/bills?" + urlencode({k: v for k, v in params.items() if k in BILL_KEYS}),
    })


def export_params(session: Session, user: ConsoleUser, form: dict[str, str]) -> dict[str, Any]:  # noqa: ARG001
    """导出 Excel: the list's filters as the job stores them (the loan filter's fields and the bill's own)."""
    flt, _ = _bill_filter(session, form)
    return {**export_jobs.dataclass_params(flt.loan),
            **{k: v for k, v in export_jobs.dataclass_params(flt).items() if k != "loan"}}
