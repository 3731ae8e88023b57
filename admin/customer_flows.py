"""What the customer console pages and the customer API share: intake by a staff member, and how its outcome
reads (created / merged / collision, with the Chinese notice)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from crm import customers
from crm.models import CustomerStatus, Staff
from crm.scope import Viewer


@dataclass
class IntakeOutcome:
    result: customers.IntakeResult
    outcome: str  # created | merged | collision
    message: str
    owner_name: str | None
    visible: bool  # may the staff member open the record?


def intake_by_staff(session: Session, viewer: Viewer, data: customers.CustomerInput, *, to_pool: bool,
                    channel: str) -> IntakeOutcome:
    """A staff member enters a lead: a new customer becomes theirs unless they send it to the pool; an existing
    one keeps its owner, and someone else's is a collision (撞单) recorded and notified by crm.customers."""
    result = customers.intake(session, data, channel=channel, claimant_id=viewer.staff_id,
                              owner_id=None if to_pool else viewer.staff_id, actor_staff_id=viewer.staff_id)
    customer = result.customer
    owner = session.get(Staff, customer.owner_id) if customer.owner_id else None
    owner_name = owner.display_name if owner else None
    visible = customers.can_view(session, viewer, customer)
    if result.created:
        where = "已放入公海" if customer.status == CustomerStatus.POOL else "已归属于您"
        return IntakeOutcome(result, "created", f"客户已创建，{where}", owner_name, visible)
    if result.collision is not None:
        return IntakeOutcome(result, "collision", f"撞单：该客户已由 {owner_name or '其他同事'} 跟进，本次录入未改变归属",
                             owner_name, visible)
    if customer.status == CustomerStatus.BLACKLIST:
        message = "该客户已存在且在黑名单中，本次录入已合并记录"
    elif customer.status == CustomerStatus.POOL:
        message = "该客户已在公海中，本次录入已合并，可前往公海领取"
    else:
        message = "该客户已存在，本次录入已合并到原客户"
    return IntakeOutcome(result, "merged", message, owner_name, visible)
