"""Demo tag groups for `scrm seed-demo` (called by crm.demo after the customers): the groups a loan
facilitator's team tags by (意向程度, 资质, 贷款需求, 跟进状态), each demo customer of a salesperson carrying a
few, tagged through crm.tags as a manager would. Deterministic; nothing when a tag group exists."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import tags
from crm.models import Customer, Staff, TagGroup
from crm.scope import Viewer

GROUPS = (
    ("意向程度", ("高意向", "中意向", "低意向")),
    ("资质", ("有房", "有车", "社保公积金", "营业执照", "征信良好")),
    ("贷款需求", ("急用钱", "大额", "低息优先", "可抵押")),
    ("跟进状态", ("已加微信", "已发资料", "待上门", "已面签")),
)


def seed(session: Session) -> list[str]:
    if session.scalar(select(TagGroup.id).limit(1)) is not None:
        return []
    manager = session.scalar(select(Staff).where(Staff.username == "manager"))
    if manager is None:
        return []
    viewer = Viewer.of(manager)
    made: dict[str, list[int]] = {}
    for sort, (group_name, names) in enumerate(GROUPS):
        group = tags.create_group(session, viewer, group_name, sort=sort)
        made[group_name] = [tags.create_tag(session, viewer, group.id, name, sort=i).id for i, name in enumerate(names)]
    owned = list(session.scalars(select(Customer.id).where(Customer.owner_id.is_not(None)).order_by(Customer.id)))
    tagged = 0
    for n, customer_id in enumerate(owned):
        picks = [made["意向程度"][n % 3], made["资质"][(n * 7) % 5]]
        if n % 2 == 0:
            picks.append(made["贷款需求"][(n // 2) % 4])
        if n % 3 != 2:
            picks.append(made["跟进状态"][(n // 3) % 4])
        tags.tag_customer(session, viewer, customer_id, picks)
        tagged += 1
    total = sum(len(v) for v in made.values())
    return [f"演示标签：{len(GROUPS)} 个标签组、{total} 个标签，{tagged} 位客户已打标签"]
