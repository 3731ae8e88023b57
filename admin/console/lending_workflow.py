"""The workflow designer (流程配置): managers add, rename, reorder and remove nodes and set each node's role or
person, SLA, required fields/documents, CC recipients (抄送) and conditional next nodes (流转条件: by the
requested amount, typed in yuan, and/or the product). Saving creates a new definition version; applications
already running keep the version they started on. Everything shown is Chinese: node kinds, roles, fields;
a node's code (its internal identifier) may be left blank and is then generated.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from admin import nav
from admin.deps import ConsoleUser, CsrfChecked, attempt, parse_int, render, require_roles
from core.errors import AppError, ValidationFailed
from core.money import format_yuan, parse_yuan_text
from core.web import SessionDep
from crm.models import ROLE_LABELS, Staff, StaffStatus
from lending.models import NODE_KIND_LABELS, Product
from lending.workflow import definitions

router = APIRouter(prefix="/console/lending/workflow", include_in_schema=False)

Designer = Annotated[ConsoleUser, Depends(require_roles(nav.WORKFLOW_EDITORS))]
BLANK_ROWS = 2
BLANK_ROUTES = 3
NODE_KEYS = ("position", "code", "name", "kind", "role", "staff", "sla", "fields", "docs", "cc")
ROUTE_KEYS = ("from", "op", "amount", "product", "to")


def _staff_names(session: SessionDep, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(ids))).all())


def _current(session: SessionDep) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The active version as form rows: nodes, and their conditions in evaluation order."""
    definition = definitions.ensure_active(session)
    nodes = definitions.nodes_of(session, definition.id)
    names = _staff_names(session, {s for n in nodes for s in n.cc_staff_ids or []})
    rows = [{"position": str(n.position), "code": n.code, "name": n.name, "kind": n.kind,
             "role": n.responsible_role or "", "staff": str(n.responsible_staff_id or ""),
             "sla": str(n.sla_hours or ""), "fields": "、".join(definitions.FIELDS.get(f, f) for f in n.required_fields or []),
             "docs": "、".join(n.required_documents or []),
             "cc": definitions.cc_text(n.cc_roles or [], [names.get(s, f"#{s}") for s in n.cc_staff_ids or []])}
            for n in nodes]
    routes = [{"from": n.code, "op": r.amount_op or "",
               "amount": format_yuan(r.amount_fen, symbol=False) if r.amount_fen else "",
               "product": str(r.product_id or ""), "to": r.to}
              for n in nodes for r in definitions.routes_of(n)]
    return rows, routes


def _preview(session: SessionDep, products: dict[int, str]) -> list[dict[str, object]]:
    """The active version in words, node by node (what the designer's table means)."""
    definition = definitions.ensure_active(session)
    nodes = definitions.nodes_of(session, definition.id)
    names = {n.code: n.name for n in nodes}
    people = _staff_names(session, {s for n in nodes for s in [*(n.cc_staff_ids or []), n.responsible_staff_id] if s})
    out: list[dict[str, object]] = []
    for i, n in enumerate(nodes):
        routes = [definitions.describe_route(r, names, products) for r in definitions.routes_of(n)]
        following = nodes[i + 1].name if i + 1 < len(nodes) else None
        if following and not any(r.amount_op is None and r.product_id is None for r in definitions.routes_of(n)):
            routes.append(f"{'其余情况' if routes else '通过后'} → {following}")
        out.append({
            "name": n.name, "kind": NODE_KIND_LABELS.get(n.kind, n.kind),
            "who": people.get(n.responsible_staff_id, "") if n.responsible_staff_id
            else ROLE_LABELS.get(n.responsible_role or "", "客户负责人" if n.kind == "intake" else "—"),
            "sla": n.sla_hours, "fields": "、".join(definitions.FIELDS.get(f, f) for f in n.required_fields or []),
            "docs": "、".join(n.required_documents or []),
            "cc": definitions.cc_text(n.cc_roles or [], [people.get(s, f"#{s}") for s in n.cc_staff_ids or []]),
            "routes": routes,
        })
    return out


def _page(request: Request, session: SessionDep, *, rows: list[dict[str, str]] | None = None,
          routes: list[dict[str, str]] | None = None, error: AppError | None = None, notice: str | None = None,
          status_code: int = 200) -> Response:
    if rows is None or routes is None:
        rows, routes = _current(session)
    blank = {"position": "", "code": "", "name": "", "kind": "review", "role": "", "staff": "", "sla": "",
             "fields": "", "docs": "", "cc": ""}
    staff = list(session.scalars(select(Staff).where(Staff.status == StaffStatus.ACTIVE).order_by(Staff.display_name)
                                 .limit(500)))
    products = dict(session.execute(select(Product.id, Product.name).order_by(Product.name).limit(200)).all())
    return render(request, "lending/workflow.html", {
        "rows": rows + [dict(blank, position=str(len(rows) + i + 1)) for i in range(BLANK_ROWS)],
        "routes": routes + [dict.fromkeys(ROUTE_KEYS, "") for _ in range(BLANK_ROUTES)],
        "node_choices": [(r["code"], r["name"] or r["code"]) for r in rows if r["code"]],
        "preview": _preview(session, products), "amount_ops": definitions.AMOUNT_OPS, "products": products,
        "versions": definitions.definitions(session), "active": definitions.active_definition(session),
        "kinds": NODE_KIND_LABELS, "roles": ROLE_LABELS, "staff": staff, "fields": definitions.FIELDS,
        "error": error, "notice": notice,
    }, status_code=status_code)


@router.get("")
def designer(request: Request, session: SessionDep, user: Designer) -> Response:
    notice = "流程已保存为新版本；进行中的申请仍按原版本流转" if request.query_params.get("done") == "saved" else None
    return _page(request, session, notice=notice)


def _route_specs(rows: list[dict[str, str]], route_rows: list[dict[str, str]]) -> dict[str, list[definitions.RouteSpec]]:
    """The conditions of the form by source node code, in the order typed; the amount parsed from yuan."""
    names = {r["code"]: r["name"] or r["code"] for r in rows}
    out: dict[str, list[definitions.RouteSpec]] = {}
    for n, r in enumerate(route_rows, start=1):
        where = f"第 {n} 条流转条件"
        if r["from"] not in names:
            raise ValidationFailed(f"{where}的起始节点不存在或已删除", field="routes")
        if not r["to"]:
            raise ValidationFailed(f"{where}（「{names[r['from']]}」）须选择满足条件时进入的节点", field="routes")
        amount = parse_yuan_text(r["amount"], label=f"{where}（「{names[r['from']]}」）的金额", field="routes")
        if (r["op"] != "") != (amount is not None):
            raise ValidationFailed(f"{where}（「{names[r['from']]}」）：金额条件须同时选择比较方式并填写金额",
                                   field="routes")
        if r["product"] and parse_int(r["product"]) is None:
            raise ValidationFailed(f"{where}的产品不正确", field="routes")
        out.setdefault(r["from"], []).append(definitions.RouteSpec(
            to=r["to"], amount_op=r["op"] or None, amount_fen=amount, product_id=parse_int(r["product"])))
    return out


@router.post("", dependencies=[CsrfChecked])
async def save(request: Request, session: SessionDep, user: Designer) -> Response:
    form = await request.form()
    count = parse_int(str(form.get("rows") or ""), default=0) or 0
    rows: list[dict[str, str]] = []
    for i in range(min(count, 40)):
        row = {k: str(form.get(f"{k}_{i}") or "").strip() for k in NODE_KEYS}
        if form.get(f"delete_{i}") or not (row["code"] or row["name"]):
            continue
        rows.append(row)
    taken = {r["code"] for r in rows}
    for n, row in enumerate(rows, start=1):  # a new node's code may be left blank: one is made up
        if not row["code"]:
            k = n
            while f"node_{k}" in taken:
                k += 1
            row["code"] = f"node_{k}"
            taken.add(row["code"])
    route_count = parse_int(str(form.get("route_rows") or ""), default=0) or 0
    route_rows: list[dict[str, str]] = []
    for j in range(min(route_count, 60)):
        route = {k: str(form.get(f"r{k}_{j}") or "").strip() for k in ROUTE_KEYS}
        if form.get(f"rdelete_{j}") or not route["from"]:
            continue
        route_rows.append(route)
    note = str(form.get("note") or "")
    distinct_reviewers = bool(form.get("distinct_reviewers"))

    def run() -> object:
        def order(r: dict[str, str]) -> int:
            try:
                return int(r["position"])
            except ValueError:
                raise ValidationFailed(f"节点「{r['name'] or r['code']}」的顺序须是整数", field="position") from None

        ordered = sorted(rows, key=order)
        routes = _route_specs(ordered, route_rows)
        specs = []
        for r in ordered:
            sla = r["sla"]
            if sla and not sla.isdigit():
                raise ValidationFailed(f"节点「{r['name']}」的时限须是整数小时", field="sla_hours")
            try:
                cc_roles, cc_staff = definitions.parse_cc(session, r["cc"])
            except ValidationFailed as exc:
                raise ValidationFailed(f"节点「{r['name']}」的{exc.message}", field="cc") from None
            specs.append(definitions.NodeSpec(
                code=r["code"], name=r["name"], kind=r["kind"], responsible_role=r["role"] or None,
                responsible_staff_id=parse_int(r["staff"]), sla_hours=int(sla) if sla else None,
                required_fields=r["fields"], required_documents=r["docs"],  # type: ignore[arg-type]
                routes=tuple(routes.get(r["code"], ())), cc_roles=tuple(cc_roles), cc_staff_ids=tuple(cc_staff)))
        return definitions.save_definition(session, specs, by_staff_id=user.viewer.staff_id, note=note,
                                           distinct_reviewers=distinct_reviewers)

    from fastapi.concurrency import run_in_threadpool

    _, error = await run_in_threadpool(attempt, session, run)
    if error:
        return await run_in_threadpool(lambda: _page(request, session, rows=rows, routes=route_rows, error=error,
                                                     status_code=error.status))
    return RedirectResponse("/console/lending/workflow?done=saved", status_code=303)
