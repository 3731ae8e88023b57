"""Settlement export (.xlsx), streamed: rows are written as they are read (xlsxwriter, constant memory).

Every text cell is written as a string and neutralised against formula injection: a value starting
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading apostrophe, so a customer
named ``=HYPERLINK(…)`` stays text in Excel and WPS. Money is written as numbers in yuan (two places).
:func:`write_xlsx` is the one place that writes the file, so it can be switched to the kernel's shared
export writer when that lands.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

import xlsxwriter
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.money import fen_to_yuan
from crm.models import Staff
from crm.scope import Viewer
from finance import settlements
from finance.models import DISCOUNT_KIND_LABELS, FUNDER_KIND_LABELS, SETTLEMENT_STATUS_LABELS

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class Money(int):
    """An amount in fen, written as yuan."""


def safe_text(value: str) -> str:
    return "'" + value if value.startswith(DANGEROUS_PREFIXES) else value


def write_xlsx(target: str | IO[bytes], title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write one sheet, streamed row by row (xlsxwriter's constant-memory mode); returns the number of data rows.

    Strings are never turned into formulas, numbers or links, and a dangerous leading character is neutralised.
    """
    book = xlsxwriter.Workbook(target, {"constant_memory": True, "strings_to_formulas": False,
                                        "strings_to_numbers": False, "strings_to_urls": False})
    try:
        sheet = book.add_worksheet(title[:31])
        money = book.add_format({"num_format": "#,##0.00"})
        bold = book.add_format({"bold": True})
        for col, header in enumerate(headers):
            sheet.write_string(0, col, safe_text(str(header)), bold)
        count = 0
        for count, row in enumerate(rows, start=1):
            for col, value in enumerate(row):
                _write(sheet, count, col, value, money)
    finally:
        book.close()
    return count


def _write(sheet: Any, row: int, col: int, value: Any, money: Any) -> None:
    if value is None:
        return
    if isinstance(value, Money):
        sheet.write_number(row, col, fen_to_yuan(int(value)), money)  # yuan, exact to the fen
    elif isinstance(value, bool):
        sheet.write_string(row, col, "是" if value else "否")
    elif isinstance(value, int | Decimal):
        sheet.write_number(row, col, value)
    else:
        if isinstance(value, datetime):
            value = clock.ensure_aware(value).astimezone(clock.BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")
        elif isinstance(value, date):
            value = value.isoformat()
        sheet.write_string(row, col, safe_text(str(value)))


HEADERS = ("结算编号", "协议编号", "客户", "手机", "资方", "资方类型", "放款金额（元）", "放款日期", "服务费（元）",
           "优惠方式", "优惠（元）", "分期手续费（元）", "其他及追加费用（元）", "客户借款还款（元）", "定金抵扣（元）",
           "应收合计（元）", "返点（元）", "营销专员", "做单专员", "状态", "结单时间")


def settlement_rows(session: Session, viewer: Viewer, **filters: Any) -> Iterator[list[Any]]:
    names = dict(session.execute(select(Staff.id, Staff.display_name)).all())
    for row in settlements.iter_settlements(session, viewer, **filters):
        s, a, c = row.settlement, row.agreement, row.customer
        yield [s.id, a.number, c.name, c.phone_masked or "", s.funder_name, FUNDER_KIND_LABELS.get(s.funder_type, s.funder_type),
               Money(s.disbursed_amount), s.disbursed_date, Money(s.service_fee_amount),
               DISCOUNT_KIND_LABELS.get(s.discount_kind, s.discount_kind), Money(s.discount_amount),
               Money(s.installment_fee_amount), Money(s.extra_fees_amount), Money(s.loan_repaid_amount),
               Money(s.deposit_applied_amount), Money(s.total_due_amount), Money(s.rebate_amount),
               names.get(a.sales_staff_id, ""), names.get(a.case_officer_id, ""),
               SETTLEMENT_STATUS_LABELS.get(s.status, s.status), s.settled_at]


def export_settlements(session: Session, viewer: Viewer, target: str | IO[bytes], **filters: Any) -> int:
    """The settlement list (within the viewer's scope and filters) as .xlsx; the number of rows written."""
    return write_xlsx(target, "结算明细", HEADERS, settlement_rows(session, viewer, **filters))
