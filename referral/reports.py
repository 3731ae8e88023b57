"""Reports: per referrer, per channel (referrers of kind 渠道), per salesperson; leaderboards;
monthly statements (Asia/Shanghai months); Excel export. All aggregates are set-based queries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import and_, case, distinct, func, select
from sqlalchemy.orm import Session

from core import clock, exports
from crm.customers import visible_clause
from crm.models import Customer, Staff
from crm.scope import Viewer
from referral import ledger
from referral.models import Attribution, CommissionEntry, EntryKind, Referrer

E = CommissionEntry


@dataclass
class ReferrerRow:
    referrer_id: int
    name: str
    kind: str
    code: str
    invitees: int = 0
    loans: int = 0
    principal: int = 0  # level-1 disbursed principal brought
    accrued: int = 0
    reversed: int = 0
    paid: int = 0
    balance: ledger.Balance = field(default_factory=ledger.Balance)

    @property
    def net(self) -> int:
        return self.accrued + self.reversed


def _month_filter(month: date | None):  # noqa: ANN202
    if month is None:
        return None
    start, end = ledger.month_bounds(month)
    return and_(E.event_at >= start, E.event_at < end)


def referrer_report(session: Session, *, kind: str | None = None, month: date | None = None,
                    limit: int = 500) -> list[ReferrerRow]:
    when = _month_filter(month)
    entry_where = [E.referrer_id == Referrer.id]
    if when is not None:
        entry_where.append(when)
    stats = (select(E.referrer_id.label("rid"),
                    func.count(distinct(case((and_(E.kind == EntryKind.ACCRUED, E.level == 1), E.loan_id)))).label("loans"),
                    func.coalesce(func.sum(case((and_(E.kind == EntryKind.ACCRUED, E.level == 1,
                                                      E.loan_id.is_not(None)), E.basis_amount), else_=0)), 0)
                    .label("principal"),
                    func.coalesce(func.sum(case((E.kind == EntryKind.ACCRUED, E.amount), else_=0)), 0).label("accrued"),
                    func.coalesce(func.sum(case((E.kind == EntryKind.REVERSED, E.amount), else_=0)), 0).label("reversed"),
                    func.coalesce(func.sum(case((E.kind == EntryKind.PAID, E.amount), else_=0)), 0).label("paid"))
             .group_by(E.referrer_id))
    if when is not None:
        stats = stats.where(when)
    stats = stats.subquery()
    invitees = select(Attribution.referrer_id.label("rid"), func.count().label("n")).group_by(Attribution.referrer_id)
    if month is not None:
        start, end = ledger.month_bounds(month)
        invitees = invitees.where(Attribution.created_at >= start, Attribution.created_at < end)
    invitees = invitees.subquery()
    stmt = (select(Referrer, func.coalesce(invitees.c.n, 0), func.coalesce(stats.c.loans, 0),
                   func.coalesce(stats.c.principal, 0), func.coalesce(stats.c.accrued, 0),
                   func.coalesce(stats.c.reversed, 0), func.coalesce(stats.c.paid, 0))
            .outerjoin(stats, stats.c.rid == Referrer.id).outerjoin(invitees, invitees.c.rid == Referrer.id)
            .order_by(func.coalesce(stats.c.accrued, 0).desc(), Referrer.id).limit(limit))
    if kind:
        stmt = stmt.where(Referrer.kind == kind)
    rows = session.execute(stmt).all()
    balances = ledger.balances(session, [r.id for r, *_ in rows]) if rows else {}
    return [ReferrerRow(r.id, r.name, r.kind, r.code, int(n), int(loans), int(principal), int(acc), int(rev),
                        int(paid), balances.get(r.id, ledger.Balance()))
            for r, n, loans, principal, acc, rev, paid in rows]


def leaderboard(session: Session, *, month: date | None = None, by: str = "net", limit: int = 10) -> list[ReferrerRow]:
    rows = [r for r in referrer_report(session, month=month) if r.kind != "staff"]
    key = {"net": lambda r: r.net, "invitees": lambda r: r.invitees, "principal": lambda r: r.principal}[by]
    return sorted([r for r in rows if key(r) > 0], key=lambda r: (-key(r), r.referrer_id))[:limit]


@dataclass
class SalespersonRow:
    staff_id: int
    name: str
    referred_customers: int
    loans: int
    principal: int
    referrer_commission: int  # what referrers earned on this salesperson's customers (net)
    staff_commission: int  # this salesperson's own scheme commission (net)


def salesperson_report(session: Session, viewer: Viewer, *, month: date | None = None) -> list[SalespersonRow]:
    """Per salesperson (the customer's owner), limited to the viewer's data scope."""
    when = _month_filter(month)
    referred = (select(Customer.owner_id.label("sid"), func.count().label("n"))
                .join(Attribution, Attribution.customer_id == Customer.id)
                .where(Customer.owner_id.is_not(None), visible_clause(viewer)).group_by(Customer.owner_id).subquery())
    money = (select(Customer.owner_id.label("sid"),
                    func.count(distinct(case((and_(E.kind == EntryKind.ACCRUED, E.level == 1), E.loan_id)))).label("loans"),
                    func.coalesce(func.sum(case((and_(E.kind == EntryKind.ACCRUED, E.level == 1, Referrer.kind != "staff",
                                                      E.loan_id.is_not(None)), E.basis_amount), else_=0)), 0).label("principal"),
                    func.coalesce(func.sum(case((and_(E.kind.in_((EntryKind.ACCRUED, EntryKind.REVERSED)),
                                                      Referrer.kind != "staff"), E.amount), else_=0)), 0).label("ref"),
                    func.coalesce(func.sum(case((and_(E.kind.in_((EntryKind.ACCRUED, EntryKind.REVERSED)),
                                                      Referrer.kind == "staff"), E.amount), else_=0)), 0).label("own"))
             .join(Customer, Customer.id == E.customer_id).join(Referrer, Referrer.id == E.referrer_id)
             .where(Customer.owner_id.is_not(None), visible_clause(viewer)).group_by(Customer.owner_id))
    if when is not None:
        money = money.where(when)
    money = money.subquery()
    stmt = (select(Staff.id, Staff.display_name, func.coalesce(referred.c.n, 0), func.coalesce(money.c.loans, 0),
                   func.coalesce(money.c.principal, 0), func.coalesce(money.c.ref, 0), func.coalesce(money.c.own, 0))
            .outerjoin(referred, referred.c.sid == Staff.id).outerjoin(money, money.c.sid == Staff.id)
            .where((referred.c.n.is_not(None)) | (money.c.sid.is_not(None))).order_by(Staff.id))
    return [SalespersonRow(*(int(v) if i != 1 else v for i, v in enumerate(row))) for row in session.execute(stmt)]


@dataclass
class Statement:
    referrer: Referrer
    month: date
    opening_total: int
    opening_available: int
    entries: list[CommissionEntry]
    closing_total: int
    closing_available: int


def monthly_statement(session: Session, referrer_id: int, month: date) -> Statement:
    """月结单: balances at the start and end of a Shanghai month and the entries written in it."""
    from referral.referrers import get_referrer

    referrer = get_referrer(session, referrer_id)
    start, end = ledger.month_bounds(month)

    def at(instant):  # noqa: ANN001, ANN202
        rows = ledger.balance_rows(session, [referrer_id], until=instant)
        return (int(rows[0][1]), int(rows[0][2])) if rows else (0, 0)

    opening, closing = at(start), at(end)
    entries = list(session.scalars(select(E).where(E.referrer_id == referrer_id, E.created_at >= start,
                                                   E.created_at < end).order_by(E.id)))
    return Statement(referrer, ledger.month_start(month), opening[0], opening[1], entries, closing[0], closing[1])


def to_xlsx(title: str, headers: list[str], rows: Iterable[list[object]]) -> bytes:
    """A one-sheet report through the product's export writer (text stays text, never a formula)."""
    return exports.xlsx_bytes(title, headers, rows)


def referrer_report_xlsx(rows: list[ReferrerRow]) -> bytes:
    from core.money import fen_to_yuan
    from referral.models import REFERRER_KIND_LABELS

    def y(fen: int):  # noqa: ANN202 - a Decimal: core.exports writes it as a number cell, no float involved
        return fen_to_yuan(fen)

    return to_xlsx("推荐人报表", ["推荐人", "类型", "推荐码", "邀请客户", "放款笔数", "放款本金(元)", "计提(元)", "冲回(元)",
                              "已发放(元)", "可提现(元)", "待确认(元)"],
                   [[r.name, REFERRER_KIND_LABELS.get(r.kind, r.kind), r.code, r.invitees, r.loans, y(r.principal),
                     y(r.accrued), y(r.reversed), y(-r.paid), y(r.balance.available), y(r.balance.pending)]
                    for r in rows])


def statement_xlsx(statement: Statement) -> bytes:
    from core.money import fen_to_yuan
    from referral.models import ENTRY_KIND_LABELS

    rows: list[list[object]] = [["期初", "", fen_to_yuan(statement.opening_total), "", ""]]
    for e in statement.entries:
        rows.append([e.created_at.astimezone(clock.BUSINESS_TZ)
                     .strftime("%Y-%m-%d %H:%M"), ENTRY_KIND_LABELS.get(e.kind, e.kind), fen_to_yuan(e.amount),
                     e.loan_id or "", e.note or ""])
    rows.append(["期末", "", fen_to_yuan(statement.closing_total), "", ""])
    return to_xlsx(f"{statement.month:%Y-%m}月结单", ["时间", "类型", "金额(元)", "贷款", "备注"], rows)
