"""Who is asking, and which customer they mean.

The sender is a staff member found by WeCom userid; everything after that runs as their
:class:`crm.scope.Viewer`, so a salesperson only ever finds customers within their data scope.
A customer reference is a phone (exact, through the blind index), a name (contains), pinyin
initials (prefix) or ``#<id>``. Several matches: :class:`CustomerAmbiguous`, whose message is a
numbered short list asking to pick one by ``#编号``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from bot.commands import replies
from core import pii
from core.errors import NotFound, ValidationFailed
from crm import customers
from crm.models import STAGE_LABELS, Customer, CustomerStatus, Grade, Pool, Staff
from crm.scope import Viewer

SHORT_LIST = 5  # matches shown before asking to narrow down
_ID_REF = re.compile(r"^[#＃](\d{1,12})$")


class CustomerAmbiguous(ValidationFailed):
    code = "chat_customer_ambiguous"
    message = "匹配到多位客户，请用 #编号 指定"


class CustomerNotMatched(NotFound):
    code = "chat_customer_not_matched"
    message = "没有找到该客户"


@dataclass(frozen=True)
class CustomerCard:
    """A customer as a chat reply shows it: masked phone only."""

    id: int
    label: str
    phone_masked: str | None
    stage: str
    grade: str | None
    owner: str | None
    status: str
    next_followup_at: datetime | None

    def line(self) -> str:
        status = {"pool": "公海", "blacklist": "黑名单"}.get(self.status)
        return f"#{self.id} " + replies.customer_line(self.label, self.phone_masked, self.stage, self.grade,
                                                      self.owner, self.next_followup_at, status=status)


def match_clause(text: str) -> ColumnElement[bool]:
    """The same matching as :func:`crm.customers.lookup`: phone exact, latin letters as initials, else name."""
    try:
        phone = pii.normalize_phone(text)
    except ValidationFailed:
        phone = None
    if phone:
        return Customer.phone_index == pii.blind_index(pii.PHONE, phone)
    if re.fullmatch(r"[A-Za-z]+", text):
        return customers.letters_clause(text)
    return Customer.name.contains(text, autoescape=True)


def id_ref(ref: str) -> int | None:
    m = _ID_REF.match(ref.strip())
    return int(m.group(1)) if m else None


def pool_matches(session: Session, viewer: Viewer, ref: str, *, limit: int = SHORT_LIST + 1) -> list[Customer]:
    """Customers in the public pools the viewer may claim from."""
    visible_pools = select(Pool.id).where(customers.pool_visible_clause(viewer))
    return list(session.scalars(
        select(Customer).where(Customer.status == CustomerStatus.POOL, Customer.pool_id.in_(visible_pools),
                               match_clause(ref))
        .order_by(Customer.id.desc()).limit(limit)))


def matches(session: Session, viewer: Viewer, ref: str, *, include_pool: bool = True) -> list[Customer]:
    """Customers the viewer can see (crm.customers.lookup), else those in their visible pools."""
    ref = ref.strip()
    if not ref:
        raise CustomerNotMatched("请写明客户：手机号、姓名、拼音（全拼或首字母）或 #编号")
    cid = id_ref(ref)
    if cid is not None:
        try:
            return [customers.get_customer(session, viewer, cid)]
        except NotFound:
            return []
    found = customers.lookup(session, viewer, ref, limit=SHORT_LIST + 1)
    if not found and include_pool:
        found = pool_matches(session, viewer, ref)
    return found


def cards(session: Session, found: Sequence[Customer]) -> list[CustomerCard]:
    """Display rows for some customers: owner names and grade labels in two small queries."""
    owner_ids = sorted({c.owner_id for c in found if c.owner_id})
    owners: dict[int, str] = {}
    if owner_ids:
        owners = {sid: name for sid, name in session.execute(
            select(Staff.id, Staff.display_name).where(Staff.id.in_(owner_ids)))}
    grade_codes = sorted({c.grade for c in found if c.grade})
    grades: dict[str, str] = {}
    if grade_codes:
        grades = {code: label for code, label in session.execute(
            select(Grade.code, Grade.label).where(Grade.code.in_(grade_codes)))}
    return [CustomerCard(c.id, c.name or c.phone_masked or f"#{c.id}", c.phone_masked,
                         STAGE_LABELS.get(c.stage, c.stage), grades.get(c.grade, c.grade) if c.grade else None,
                         owners.get(c.owner_id) if c.owner_id else None, c.status, c.next_followup_at)
            for c in found]


def ambiguity(session: Session, ref: str, found: Sequence[Customer], example: str) -> CustomerAmbiguous:
    shown = cards(session, found[:SHORT_LIST])
    more = "\n……还有更多，请写得更具体些" if len(found) > SHORT_LIST else ""
    return CustomerAmbiguous(
        f"「{ref[:20]}」匹配到多位客户，请用 #编号 指定，例如：{example.format(ref=f'#{shown[0].id}')}\n"
        + replies.numbered([c.line() for c in shown]) + more)


def one(session: Session, viewer: Viewer, ref: str, *, example: str, include_pool: bool = True) -> Customer:
    """Exactly one customer for ``ref`` within the viewer's reach, or a refusal that says why."""
    found = matches(session, viewer, ref, include_pool=include_pool)
    if not found:
        raise CustomerNotMatched(f"没有找到客户「{ref[:20]}」（或不在您的数据范围内）。可用手机号、姓名、拼音（全拼或首字母）或 #编号")
    if len(found) > 1:
        raise ambiguity(session, ref, found, example)
    return found[0]
