"""What the customer console pages and the customer API share: intake by a staff member, and how its outcome
reads (created / merged / collision, with the Chinese notice)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from core import ratelimit
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


# Per staff member, console and API together: entering phone numbers one after another must not become a
# way to learn who is already a customer (every answer says whether the number is known).
INTAKE_LIMIT = (30, timedelta(minutes=10))
HIDDEN_COLLISION = "撞单：该客户已有其他同事跟进，本次录入未改变归属"


def intake_by_staff(session: Session, viewer: Viewer, data: customers.CustomerInput, *, to_pool: bool,
                    channel: str) -> IntakeOutcome:
    """A staff member enters a lead: a new customer becomes theirs unless they send it to the pool; an existing
    one keeps its owner, and someone else's is a collision (撞单) recorded and notified by crm.customers.

    A collision with a customer outside the staff member's data scope says only that someone else follows
    the customer: no owner's name, and (``visible`` false) no customer id or record. The owner is told."""
    ratelimit.hit_sliding(f"crm.intake:{viewer.staff_id}", *INTAKE_LIMIT, "录入客户过于频繁，请稍后再试",
                          session=session)
    result = customers.intake(session, data, channel=channel, claimant_id=viewer.staff_id,
                              owner_id=None if to_pool else viewer.staff_id, actor_staff_id=viewer.staff_id)
    customer = result.customer
    visible = customers.can_view(session, viewer, customer)
    owner = session.get(Staff, customer.owner_id) if customer.owner_id and visible else None
    owner_name = owner.display_name if owner else None
    if result.created:
        where = "已放入公海" if customer.status == CustomerStatus.POOL else "已归属于您"
        return IntakeOutcome(result, "created", f"客户已创建，{where}", owner_name, visible)
    if result.collision is not None:
        if not visible:
            return IntakeOutcome(result, "collision", HIDDEN_COLLISION, None, visible)
        return IntakeOutcome(result, "collision", f"撞单：该客户已由 {owner_name or '其他同事'} 跟进，本次录入未改变归属",
                             owner_name, visible)
    if customer.status == CustomerStatus.BLACKLIST:
        message = "该客户已存在且在黑名单中，本次录入已合并记录"
    elif customer.status == CustomerStatus.POOL:
        message = "该客户已在公海中，本次录入已合并，可前往公海领取"
    else:
        message = "该客户已存在，本次录入已合并到原客户"
    return IntakeOutcome(result, "merged", message, owner_name, visible)
