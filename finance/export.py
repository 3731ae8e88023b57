"""Settlement export (.xlsx), streamed through the kernel's export writer (:mod:`core.exports`).

Text cells stay text (a customer named ``=HYPERLINK(…)`` is never a formula), amounts are numbers in yuan,
exact to the fen, and rows are written as they are read, so 100,000 settlements need no more memory than ten.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock, exports
from core.money import fen_to_yuan
from crm.models import Staff
from crm.scope import Viewer
from finance import settlements
from finance.models import DISCOUNT_KIND_LABELS, FUNDER_KIND_LABELS, SETTLEMENT_STATUS_LABELS


class Money(int):
    """An amount in fen, written as yuan."""


def _cell(value: Any) -> object:
    if isinstance(value, Money):
        return fen_to_yuan(int(value))
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return clock.ensure_aware(value).astimezone(clock.BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return value


def write_xlsx(target: str | IO[bytes], title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write one sheet, streamed row by row; returns the number of data rows."""
    count = 0

    def cells() -> Iterator[list[object]]:
        nonlocal count
        for row in rows:
            count += 1
            yield [_cell(v) for v in row]

    exports.write_xlsx(target, title, headers, cells())
    return count


HEADERS = ("结算编号", "协议编号", "客户", "手机", "资方", "资方类型", "放款金额（元）", "放款日期", "服务费（元）",
           "优惠方式", "优惠（元）", "分期手续费（元）", "其他及追加费用（元）", "客户借款还款（元）", "定金抵扣（元）",
           "应收合计（元）", "返点（元）", "营销专员", "做单专员", "状态", "结单时间")


def settlement_rows(session: Session, viewer: Viewer, **filters: Any) -> Iterator[list[Any]]:
    names = dict(session.execute(select(Staff.id, Staff.display_name)).all())
    for row in settlements.iter_settlements(session, viewer, **filters):
        yield settlement_cells(row.settlement, row.agreement, row.customer, names)


def staff_names(session: Session, rows: Sequence[Any]) -> dict[int, str]:
    """The names of the salespeople and case officers of a batch of (settlement, agreement, customer) rows."""
    ids = {r[1].sales_staff_id for r in rows} | {r[1].case_officer_id for r in rows}
    wanted = ids - {None}
    return dict(session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(wanted))).all()) if wanted else {}


def export_cells(session: Session, rows: Sequence[Any]) -> Iterator[list[object]]:
    """A batch of the settlement list's rows (its SELECT: settlement, agreement, customer) as spreadsheet cells."""
    names = staff_names(session, rows)
    for row in rows:
        yield [_cell(v) for v in settlement_cells(row[0], row[1], row[2], names)]


def settlement_cells(s: Any, a: Any, c: Any, names: dict[int, str]) -> list[Any]:
    """One settlement row (the list's settlement, agreement and customer) before :func:`_cell`."""
    return [s.id, a.number, c.name, c.phone_masked or "", s.funder_name,
            FUNDER_KIND_LABELS.get(s.funder_type, s.funder_type),
            Money(s.disbursed_amount), s.disbursed_date, Money(s.service_fee_amount),
            DISCOUNT_KIND_LABELS.get(s.discount_kind, s.discount_kind), Money(s.discount_amount),
            Money(s.installment_fee_amount), Money(s.extra_fees_amount), Money(s.loan_repaid_amount),
            Money(s.deposit_applied_amount), Money(s.total_due_amount), Money(s.rebate_amount),
            names.get(a.sales_staff_id, ""), names.get(a.case_officer_id, ""),
            SETTLEMENT_STATUS_LABELS.get(s.status, s.status), s.settled_at]


def export_settlements(session: Session, viewer: Viewer, target: str | IO[bytes], **filters: Any) -> int:
    """The settlement list (within the viewer's scope and filters) as .xlsx; the number of rows written."""
    return write_xlsx(target, "结算明细", HEADERS, settlement_rows(session, viewer, **filters))
