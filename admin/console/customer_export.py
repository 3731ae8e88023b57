"""客户导出: the customer list, with its filters, as an .xlsx (managers only; masked; audit-logged)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from admin import nav
from admin.console.customers import FILTER_KEYS, _filter, _funnel_clause, _profile_clause
from admin.deps import ConsoleUser, require_roles
from core import clock, exports
from core.web import SessionDep
from crm import customer_export, customer_queries

router = APIRouter(prefix="/console/customers", include_in_schema=False)
Manager = Annotated[ConsoleUser, Depends(require_roles(nav.CUSTOMER_MANAGERS))]


@router.get("/export")
def export(request: Request, session: SessionDep, user: Manager) -> Response:
    params = {k: request.query_params.get(k, "") for k in FILTER_KEYS}
    stmt = customer_queries.filtered(session, user.viewer, _filter(params),
                                     _funnel_clause(params["funnel"]) + _profile_clause(session, params))
    data = customer_export.export_xlsx(session, user.viewer, stmt, params)
    name = f"customers-{clock.today().isoformat()}.xlsx"
    return Response(data, media_type=exports.XLSX_MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
