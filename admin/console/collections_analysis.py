"""Collections analysis page (催收分析) and its Excel export, for managers: per collector, group and bucket;
overdue rate and recovery by region, industry and customer type. The date range filters the cases by the day they
opened; every figure is limited to the viewer's data scope (a department manager sees their subtree)."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from admin.deps import CurrentUser, render
from core import exports
from core.errors import PermissionDenied
from core.money import fen_to_yuan
from core.web import SessionDep
from crm.models import CUSTOMER_TYPE_LABELS
from postloan import actions, analysis

router = APIRouter(prefix="/console/collections", include_in_schema=False)

HEADER = ["维度", "案件数", "接通数", "接通率(%)", "承诺数", "承诺率(%)", "承诺兑现率(%)", "回收金额(元)", "仍逾期(元)", "回收率(%)"]


def _range(q: Any) -> tuple[date, date]:
    return analysis.date_range(q.get("from"), q.get("to"))


def _manager(user: Any) -> None:
    if user.viewer.role not in actions.MANAGERS:
        raise PermissionDenied("只有经理或管理员可以查看催收分析")


@router.get("/analysis")
def analysis_page(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _manager(user)
    start, to = _range(request.query_params)
    return render(request, "collections/analysis.html", {
        "tab": "analysis", "is_manager": True, "start": start, "to": to, **analysis.tables(session, user.viewer, start, to),
        "type_labels": CUSTOMER_TYPE_LABELS, "query": f"from={start}&to={to}",
    })


def _pct(value: Decimal | None) -> Decimal | None:
    return None if value is None else value * 100


def _stat_rows(rows: list[analysis.StatRow]) -> list[list[object]]:
    return [[r.label, r.cases, r.contacted, _pct(r.contact_rate), r.promised, _pct(r.promise_rate), _pct(r.kept_rate),
             fen_to_yuan(r.recovered), fen_to_yuan(r.still_overdue), _pct(r.recovery_rate)] for r in rows]


@router.get("/analysis.xlsx")
def analysis_export(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _manager(user)
    start, to = _range(request.query_params)
    t = analysis.tables(session, user.viewer, start, to)
    out = io.BytesIO()
    with exports.XlsxWriter(out) as book:
        for name, key in (("按催收员", "collectors"), ("按催收组", "groups"), ("按委外机构", "agencies"),
                          ("按账期", "buckets")):
            sheet = book.sheet(name, header=HEADER)
            for row in _stat_rows(t[key]):
                sheet.append(row)
        sheet = book.sheet("通话", header=["员工", "外呼次数", "接通次数", "接通率(%)", "通话时长(秒)"])
        for c in t["calls"]:
            sheet.append([c.label, c.calls, c.answered, _pct(c.connect_rate), c.talk_seconds])
        for name, key, labels in (("逾期率-地区", "regions", {}), ("逾期率-行业", "industries", {}),
                                  ("逾期率-客户类型", "types", CUSTOMER_TYPE_LABELS)):
            sheet = book.sheet(name, header=["维度", "在贷笔数", "逾期笔数", "逾期率(%)", "逾期金额(元)", "回收金额(元)",
                                             "回收率(%)"])
            for r in t[key]:
                sheet.append([labels.get(r.label, r.label), r.loans, r.overdue, _pct(r.rate), fen_to_yuan(r.overdue_amount),
                              fen_to_yuan(r.recovered), _pct(r.recovery_rate)])
    filename = quote(f"催收分析-{start}-{to}.xlsx")
    return Response(out.getvalue(), media_type=exports.XLSX_MEDIA_TYPE,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"})
