"""The audit log (审计日志): search by action prefix, record, actor and date range."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from admin import audit_text, nav
from admin.deps import ConsoleUser, render, require_roles
from admin.pagination import PAGE_SIZE, page_number, probed
from core import audit, clock
from core.web import SessionDep
from crm import org_service

router = APIRouter(prefix="/audit")

AuditReader = Annotated[ConsoleUser, Depends(require_roles(nav.AUDIT_READERS))]


def _date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw.strip()) if raw.strip() else None
    except ValueError:
        return None


def _actor_id(session: SessionDep, user: ConsoleUser, raw: str) -> int | None | bool:
    """A staff id, or the id of the staff member with that exact username; False when nobody matches."""
    raw = raw.strip()
    if not raw:
        return None
    if raw.isdigit():
        return int(raw)
    rows, _ = org_service.list_staff(session, user.viewer, q=raw, limit=50)
    match = next((s.id for s in rows if s.username == raw or s.display_name == raw), None)
    return match if match is not None else False


@router.get("")
def audit_log(request: Request, session: SessionDep, user: AuditReader, action: str = "", entity_type: str = "",
              entity_id: str = "", actor: str = "", since: str = "", until: str = "", page: str = "1") -> Response:
    number = page_number(page)
    since_date, until_date = _date(since), _date(until)
    actor_id = _actor_id(session, user, actor)
    filters = {"action": action, "entity_type": entity_type, "entity_id": entity_id, "actor": actor,
               "since": since_date.isoformat() if since_date else "",
               "until": until_date.isoformat() if until_date else ""}
    if actor_id is False:
        entries = []
    else:
        entries = audit.search(
            session, action=action.strip() or None, entity_type=entity_type.strip() or None,
            entity_id=entity_id.strip() or None, actor_id=actor_id,
            since=clock.start_of_business_day(since_date) if since_date else None,
            until=clock.start_of_business_day(until_date + timedelta(days=1)) if until_date else None,
            limit=PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE)
    return render(request, "audit.html", {
        "entries": entries[:PAGE_SIZE], "filters": filters,
        "page": probed(number, len(entries), "/console/audit", filters),
        "unknown_actor": actor_id is False, "areas": audit_text.AREA_LABELS, "entities": audit_text.ENTITY_LABELS,
        "audit_sentence": lambda e: audit_text.sentence(audit_text.actor_label(e.actor_label), e.action, e.entity_type,
                                                       e.entity_id, e.before, e.after),
    })
