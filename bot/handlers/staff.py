"""Address-book changes (``change_contact``): a member who left the corp opens the CRM handover.

``delete_user`` → :func:`crm.handover.open_departure_case` with ``source="wecom"``, which marks the
staff member departed (sessions and API tokens end) and lists the customers they own. It is
idempotent: a re-delivered event, or a manager who already opened the case in the console, finds
the open case.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from bot.inbox import handles
from crm import handover, org_service

log = logging.getLogger(__name__)


@handles("event:change_contact:delete_user")
def on_delete_user(session: Session, fields: dict[str, str]) -> None:
    staff = org_service.find_by_wecom_userid(session, fields.get("UserID", ""))
    if staff is None:
        log.info("delete_user for a WeCom member who is not our staff: nothing to hand over")
        return
    case = handover.open_departure_case(session, staff.id, source="wecom",
                                        note="企业微信通讯录：成员已离职")
    log.info("departure case %s open for staff %s (from WeCom)", case.id, staff.id)
