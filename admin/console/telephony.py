"""Calls (通话记录, /console/collections/calls): the call list, click-to-call, batch dial lists and the
do-not-call list (勿扰名单).

The browser names a customer (``POST …/dial``), a collection case (``POST …/case/{id}``, the case page's
拨打) or a list of cases (``POST …/batch``: case numbers, or the caller's queue, one bucket), never a number: the call is placed through :func:`postloan.telephony.calls.place_call`, which checks the do-not-call list and
the permitted hours and lets a task dial on the server. Answered with a small status fragment (htmx) that
polls ``GET …/{id}/status`` until the call has a result; without htmx, a redirect back.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from admin.deps import ConsoleUser, CsrfChecked, attempt, render, require_roles
from admin.nav import COLLECTIONS_STAFF
from core.errors import AppError, NotFound, PermissionDenied
from core.web import SessionDep
from crm import customers
from lending.models import BUCKETS
from postloan import actions, case_calls
from postloan.telephony import calls, config
from postloan.telephony.models import RESULT_LABELS, STATUS_LABELS, TelephonyCall

router = APIRouter(prefix="/console/collections/calls", include_in_schema=False)
Collector = Annotated[ConsoleUser, Depends(require_roles(COLLECTIONS_STAFF))]
SEE_ALL = actions.CALLS_ALL
NOTICES = {"dnc": "已登记为勿扰", "dnc_cleared": "已解除勿扰"}


def status_fragment(request: Request, call: TelephonyCall | None, error: AppError | None = None) -> Response:
    return render(request, "telephony/_call_status.html", {
        "call": call, "call_error": error, "results": RESULT_LABELS, "statuses": STATUS_LABELS})


def _page(request: Request, session: SessionDep, user: ConsoleUser, *, page: int = 1, mine: str = "",
          error: AppError | None = None, batch_result: dict | None = None, status_code: int = 200) -> Response:
    see_all = user.viewer.role in SEE_ALL and mine != "1"
    page = max(1, min(page, 10_000))
    rows, total = calls.list_calls(session, staff_id=None if see_all else user.viewer.staff_id, limit=50,
                                   offset=(page - 1) * 50)
    return render(request, "telephony/calls.html", {
        "rows": rows, "total": total, "page": page, "pages": max(1, (total + 49) // 50), "see_all": see_all,
        "can_see_all": user.viewer.role in SEE_ALL, "results": RESULT_LABELS, "statuses": STATUS_LABELS,
        "dnc": calls.do_not_call_list(session), "hours": calls.get_settings_hours_label(),
        "simulated": config.simulated(), "notice": NOTICES.get(request.query_params.get("done", "")),
        "error": error, "batch_result": batch_result, "buckets": BUCKETS[1:]}, status_code=status_code)


@router.get("")
def call_list(request: Request, session: SessionDep, user: Collector, page: int = 1, mine: str = "") -> Response:
    return _page(request, session, user, page=page, mine=mine)


def _answer(request: Request, call: TelephonyCall | None, error: AppError | None, back: str) -> Response:
    if request.headers.get("hx-request"):
        return status_fragment(request, call, error)
    if error is not None:
        raise error
    return RedirectResponse(back, status_code=303)


@router.post("/dial", dependencies=[CsrfChecked])
def dial(request: Request, session: SessionDep, user: Collector, customer_id: Annotated[int, Form()]) -> Response:
    """Call a customer the caller may see (404 otherwise), about no case."""
    customers.get_customer(session, user.viewer, customer_id)
    call, error = attempt(session, lambda: calls.place_call(session, staff_id=user.viewer.staff_id,
                                                            customer_id=customer_id))
    return _answer(request, call, error, "/console/collections/calls")


@router.post("/case/{case_id}", dependencies=[CsrfChecked])
def dial_case(request: Request, session: SessionDep, user: Collector, case_id: int) -> Response:
    """The case page's 拨打: the case's borrower, for the collector who holds the case (or a manager)."""
    call, error = attempt(session, lambda: case_calls.call_case(session, case_id, viewer=user.viewer))
    return _answer(request, call, error, f"/console/collections/cases/{case_id}")


@router.get("/{call_id}/status")
def call_status(request: Request, session: SessionDep, user: Collector, call_id: int) -> Response:
    call = session.get(TelephonyCall, call_id)
    if call is None or (call.staff_id != user.viewer.staff_id and user.viewer.role not in SEE_ALL):
        raise NotFound("通话记录不存在")
    return status_fragment(request, call)


@router.post("/batch", dependencies=[CsrfChecked])
def batch(request: Request, session: SessionDep, user: Collector, name: Annotated[str, Form()] = "",
          case_ids: Annotated[str, Form()] = "", bucket: Annotated[str, Form()] = "") -> Response:
    """A batch dial list of cases: the typed case numbers, or else the caller's own open cases (one bucket)."""
    ids = [int(x) for x in case_ids.replace("，", ",").replace("\n", ",").split(",") if x.strip().isdigit()]
    result, error = attempt(session, lambda: case_calls.dial_cases(session, viewer=user.viewer, name=name,
                                                                   case_ids=ids or None, bucket=bucket or None))
    return _page(request, session, user, error=error, status_code=error.status if error else 200,
                 batch_result=None if result is None else {"placed": len(result.calls), "refused": result.refused})


def _visible(session: SessionDep, user: ConsoleUser, customer_id: int) -> bool:
    try:
        customers.get_customer(session, user.viewer, customer_id)
    except AppError:
        return False
    return True


@router.post("/do-not-call", dependencies=[CsrfChecked])
def mark_dnc(session: SessionDep, user: Collector, customer_id: Annotated[int, Form()],
             reason: Annotated[str, Form()] = "") -> Response:
    if not _visible(session, user, customer_id):
        raise NotFound("客户不存在或不在您的数据范围内")
    calls.mark_do_not_call(session, customer_id, staff_id=user.viewer.staff_id, reason=reason.strip())
    return RedirectResponse("/console/collections/calls?done=dnc", status_code=303)


@router.post("/do-not-call/{customer_id}/clear", dependencies=[CsrfChecked])
def clear_dnc(session: SessionDep, user: Collector, customer_id: int) -> Response:
    if user.viewer.role not in SEE_ALL:
        raise PermissionDenied("只有经理或管理员可以解除勿扰")
    calls.clear_do_not_call(session, customer_id, staff_id=user.viewer.staff_id)
    return RedirectResponse("/console/collections/calls?done=dnc_cleared", status_code=303)

