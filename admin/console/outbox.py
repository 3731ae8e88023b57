"""任务队列: the durable outbox for admins: counts, the rows waiting or dead, and sending a dead one again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from admin import nav
from admin.deps import ConsoleUser, CsrfChecked, render, require_roles
from admin.outbox_labels import task_label
from admin.pagination import PAGE_SIZE, page_number, probed
from core import audit, outbox
from core.web import SessionDep

router = APIRouter(prefix="/outbox")

OutboxAdmin = Annotated[ConsoleUser, Depends(require_roles(nav.OUTBOX_ADMINS))]

STATUS_LABELS = {outbox.DEAD: "失败（需处理）", outbox.PENDING: "待发送"}
NOTICES = {"retried": "已重新发送，任务将在几秒内执行", "retried_all": "已重新发送全部失败任务", "gone": "该任务已发送或不存在"}


@router.get("")
def outbox_page(request: Request, session: SessionDep, user: OutboxAdmin, status: str = outbox.DEAD,
                page: str = "1") -> Response:
    status = status if status in STATUS_LABELS else outbox.DEAD
    number = page_number(page)
    rows = outbox.list_rows(session, status, limit=PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE)
    return render(request, "outbox/list.html", {
        "counts": outbox.counts(session), "status": status, "status_labels": STATUS_LABELS,
        "rows": rows[:PAGE_SIZE], "label": task_label, "notice": NOTICES.get(request.query_params.get("done", "")),
        "page": probed(number, len(rows), "/console/outbox", {"status": status}),
    })


@router.post("/retry-dead", dependencies=[CsrfChecked])
def retry_all(session: SessionDep, user: OutboxAdmin) -> Response:
    count = outbox.retry_all_dead(session)
    audit.record(session, "outbox.retry_all", entity_type="task_outbox", detail=f"{count} 条")
    return RedirectResponse("/console/outbox?status=pending&done=retried_all", status_code=303)


@router.post("/{row_id}/retry", dependencies=[CsrfChecked])
def retry_one(session: SessionDep, user: OutboxAdmin, row_id: int) -> Response:
    if not outbox.retry(session, row_id):
        return RedirectResponse("/console/outbox?done=gone", status_code=303)
    audit.record(session, "outbox.retry", entity_type="task_outbox", entity_id=row_id)
    return RedirectResponse("/console/outbox?status=pending&done=retried", status_code=303)
