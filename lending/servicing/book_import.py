"""Loan-book import (存量贷款导入): a facilitator moving to the product brings its book from .xlsx / .csv.

The file is read by the lead importer's hardened reader (:mod:`crm.importer.sources`: spreadsheet bombs, grid size
and the row cap checked before anything is opened; the encoding of a CSV sniffed). One row per installment, the
loan's own columns repeated (or filled on its first row only)::

    贷款编号 | 姓名 | 手机号 | 身份证号 | 产品 | 本金 | 期数 | 年利率 | 放款日期 |
    期次 | 到期日 | 应还本金 | 应还利息 | 应还费用 | 已还金额 | 还款日期

- A loan whose file gives no schedule (期次, 到期日… empty) gets the schedule its product generates from 本金, 期数 and
  放款日期 (and 年利率 when given); one given is kept as given (checked: periods 1…n, due dates rising after the
  start, principal adding up to the loan's).
- 已还金额 / 还款日期 on a row: what the borrower paid (on that date), posted as a historical repayment through
  :func:`lending.servicing.repayments.record_repayment` in value-date order, so balances, penalty, buckets and
  overdue days come out of the same rules as any payment. A loan-level row (no 期次) may carry a paid amount too.
- The customer is found or created through the CRM's dedup (:func:`crm.customers.intake`: same phone or ID number,
  same customer); the product by its name or code; every amount through :func:`core.money.parse_yuan_text`.

Each loan is imported in its own savepoint: a bad row refuses its loan as a whole (every bad row listed with its
row number and reason), never the loans beside it. Idempotent on the source's loan number: the application's
unique ``idempotency_key`` is ``loan-import:<贷款编号>``, so a second import of the same book skips what is in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.errors import AppError, PermissionDenied, ValidationFailed
from core.money import format_yuan, parse_yuan_text
from crm import customers
from crm.importer import sources
from crm.importer.errors import ImportHeadersInvalid
from crm.importer.headers import fold
from crm.importer.rows import cell_text, parse_id_number, parse_phone
from crm.models import Role
from crm.permissions import permission
from crm.scope import Viewer
from lending import contracts, products
from lending.models import (
    Application,
    Contract,
    ContractLine,
    Disbursement,
    Loan,
    LoanInstallment,
    Product,
    ProductVersion,
)
from lending.schedule.terms import MAX_PERIODS
from lending.servicing import repayments, state, versions
from lending.workflow import definitions

__all__ = ["COLUMNS", "IMPORTERS", "ImportReport", "LoanResult", "RowError", "import_book", "key_for"]

IMPORTERS = permission("lending.book_import", "存量贷款导入", "从表格导入已有的贷款台账（贷款、还款计划、已还金额）",
                       {Role.FINANCE, Role.MANAGER, Role.ADMIN}, group="贷款")
KEY_PREFIX = "loan-import:"
MAX_LOAN_NUMBER = 64
# field -> (label, accepted header names after folding)
COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "loan_number": ("贷款编号", ("贷款编号", "借据号", "借据编号", "合同编号", "贷款号", "loanno", "loannumber")),
    "name": ("姓名", ("姓名", "客户姓名", "借款人", "客户", "name")),
    "phone": ("手机号", ("手机号", "手机", "手机号码", "联系电话", "电话", "phone", "mobile")),
    "id_number": ("身份证号", ("身份证号", "身份证", "身份证号码", "证件号码", "idnumber")),
    "product": ("产品", ("产品", "产品名称", "产品代码", "产品编码", "product")),
    "principal": ("本金", ("本金", "贷款本金", "放款金额", "贷款金额", "借款金额", "principal")),
    "term": ("期数", ("期数", "贷款期数", "总期数", "期限", "term")),
    "annual_rate": ("年利率", ("年利率", "年化利率", "利率", "rate")),
    "start_date": ("放款日期", ("放款日期", "放款日", "起息日", "startdate")),
    "number": ("期次", ("期次", "第几期", "期号", "period")),
    "due_date": ("到期日", ("到期日", "应还日期", "还款日", "duedate")),
    "due_principal": ("应还本金", ("应还本金", "本期本金", "dueprincipal")),
    "due_interest": ("应还利息", ("应还利息", "本期利息", "dueinterest")),
    "due_fee": ("应还费用", ("应还费用", "本期费用", "服务费", "duefee")),
    "paid": ("已还金额", ("已还金额", "已还", "实还金额", "paid")),
    "paid_date": ("还款日期", ("还款日期", "实还日期", "paiddate")),
}
_LOOKUP = {alias: fname for fname, (_, names) in COLUMNS.items() for alias in names}
LOAN_FIELDS = ("name", "phone", "id_number", "product", "principal", "term", "annual_rate", "start_date")
SCHEDULE_FIELDS = ("number", "due_date", "due_principal", "due_interest", "due_fee")
REQUIRED = ("loan_number", "name", "product", "principal", "start_date")
HEADER_SCAN = 10  # rows looked at for the header (title rows above it are skipped)
_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")


@dataclass(frozen=True)
class RowError:
    row: int  # the spreadsheet's row number
    loan_number: str | None
    reason: str


@dataclass
class LoanResult:
    loan_number: str
    rows: list[int]
    status: str  # created | skipped | refused
    loan_id: int | None = None
    customer_id: int | None = None
    reason: str | None = None


STATUS_LABELS = {"created": "已导入", "skipped": "已存在，跳过", "refused": "未导入"}


@dataclass
class ImportReport:
    file_name: str
    loans: list[LoanResult] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.loans if r.status == status)

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file_name, "created": self.count("created"), "skipped": self.count("skipped"),
                "refused": self.count("refused"),
                "loans": [{"loan_number": r.loan_number, "status": r.status, "loan_id": r.loan_id,
                           "customer_id": r.customer_id, "rows": r.rows, "reason": r.reason} for r in self.loans],
                "errors": [{"row": e.row, "loan_number": e.loan_number, "reason": e.reason} for e in self.errors]}


def key_for(loan_number: str) -> str:
    return f"{KEY_PREFIX}{loan_number}"


# --- reading -------------------------------------------------------------------------------------------------

def _header(cells: list[object]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for i, raw in enumerate(cells):
        name = fold(raw)
        name = re.sub(r"[(\[（【][^)\]）】]*[)\]）】]$", "", name)  # '本金(元)' -> '本金'
        fname = _LOOKUP.get(name)
        if fname is not None and fname not in columns:
            columns[fname] = i
    return columns


def _rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    """(row number, {field: cell}) of every data row, after the header row."""
    info = sources.inspect(path)
    header: dict[str, int] | None = None
    seen: list[str] = []
    for n, cells in sources.iter_rows(path, info):
        if header is None:
            columns = _header(cells)
            if all(f in columns for f in REQUIRED):
                header = columns
                continue
            seen = seen or [str(c).strip() for c in cells if c not in (None, "")]
            if n >= HEADER_SCAN:
                break
            continue
        yield n, {f: cells[i] if i < len(cells) else None for f, i in header.items()}
    if header is None:
        missing = "、".join(COLUMNS[f][0] for f in REQUIRED)
        raise ImportHeadersInvalid(f"没有找到表头：需要的列 {missing}（另需手机号或身份证号）。"
                                   f"文件中的列：{'、'.join(seen) or '（无）'}")


def _date(value: object, label: str, fname: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = cell_text(value)
    match = _DATE.fullmatch(text) or re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text)
    if match:
        try:
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            pass
    raise ValidationFailed(f"{label}不是有效日期：{text[:20]}（应为 YYYY-MM-DD）", field=fname)


def _int(value: object, label: str, fname: str, *, low: int, high: int) -> int | None:
    text = cell_text(value)
    if not text:
        return None
    text = text.removesuffix("期").removesuffix("个月")
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValidationFailed(f"{label}必须是 {low}–{high} 的整数：{cell_text(value)[:20]}", field=fname)
    return int(text)


def _fen(value: object, label: str, fname: str) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    elif isinstance(value, float):  # an Excel number cell: its shortest text, never float arithmetic
        value = repr(value) if value == value and abs(value) != float("inf") else str(value)
    return parse_yuan_text(value, label=label, field=fname)


def _rate(value: object) -> Decimal | None:
    text = cell_text(value)
    if not text:
        return None
    if isinstance(value, float):
        text = repr(value)
    percent = text.endswith("%")
    try:
        rate = Decimal(text.removesuffix("%").strip())
    except InvalidOperation:
        raise ValidationFailed(f"年利率格式不正确：{text[:20]}（如 12% 或 0.12）", field="annual_rate") from None
    if percent or rate > 1:
        rate = rate / 100
    if not Decimal(0) <= rate <= Decimal("0.36"):
        raise ValidationFailed(f"年利率 {text[:20]} 超出 0–36% 的范围", field="annual_rate")
    return rate


@dataclass
class _Row:
    n: int
    loan: dict[str, Any]
    number: int | None = None
    due_date: date | None = None
    due: tuple[int, int, int] | None = None  # principal, interest, fee
    paid: int | None = None
    paid_date: date | None = None


def _parse(n: int, cells: dict[str, object]) -> _Row:
    """One row, every problem in one message (raises ValidationFailed)."""
    problems: list[str] = []
    loan: dict[str, Any] = {}
    row = _Row(n, loan)

    def attempt(fname: str, fn: Any) -> Any:
        try:
            return fn()
        except ValidationFailed as exc:
            problems.append(exc.message)
            return None

    today = clock.today()
    loan["name"] = cell_text(cells.get("name"))[:64] or None
    if cells.get("phone") not in (None, ""):
        loan["phone"] = attempt("phone", lambda: parse_phone(cells.get("phone")))
    if cells.get("id_number") not in (None, ""):
        loan["id_number"] = attempt("id_number", lambda: parse_id_number(cells.get("id_number")))
    loan["product"] = cell_text(cells.get("product")) or None
    loan["principal"] = attempt("principal", lambda: _fen(cells.get("principal"), "本金", "principal"))
    loan["term"] = attempt("term", lambda: _int(cells.get("term"), "期数", "term", low=1, high=MAX_PERIODS))
    loan["annual_rate"] = attempt("annual_rate", lambda: _rate(cells.get("annual_rate")))
    loan["start_date"] = attempt("start_date", lambda: _date(cells.get("start_date"), "放款日期", "start_date"))
    if loan["start_date"] is not None and loan["start_date"] > today:
        problems.append(f"放款日期 {loan['start_date'].isoformat()} 晚于今天")
    row.number = attempt("number", lambda: _int(cells.get("number"), "期次", "number", low=1, high=MAX_PERIODS))
    row.due_date = attempt("due_date", lambda: _date(cells.get("due_date"), "到期日", "due_date"))
    due = [attempt(f, lambda f=f: _fen(cells.get(f), COLUMNS[f][0], f))
           for f in ("due_principal", "due_interest", "due_fee")]
    if row.number is not None or row.due_date is not None or any(d is not None for d in due):
        if row.number is None:
            problems.append("还款计划行缺少期次")
        if row.due_date is None:
            problems.append("还款计划行缺少到期日")
        if due[0] is None:
            problems.append("还款计划行缺少应还本金")
        row.due = (due[0] or 0, due[1] or 0, due[2] or 0)
    row.paid = attempt("paid", lambda: _fen(cells.get("paid"), "已还金额", "paid"))
    row.paid_date = attempt("paid_date", lambda: _date(cells.get("paid_date"), "还款日期", "paid_date"))
    if row.paid:
        if row.paid_date is None:
            problems.append("有已还金额但缺少还款日期")
        elif row.paid_date > today:
            problems.append(f"还款日期 {row.paid_date.isoformat()} 晚于今天")
    elif row.paid_date is not None and row.paid is None:
        problems.append("有还款日期但缺少已还金额")
    if problems:
        raise ValidationFailed("；".join(dict.fromkeys(problems)))
    return row


# --- one loan --------------------------------------------------------------------------------------------------

class _Refused(Exception):
    def __init__(self, reason: str, rows: list[RowError] | None = None) -> None:
        super().__init__(reason)
        self.reason, self.rows = reason, rows or []


def _loan_fields(number: str, rows: list[_Row]) -> dict[str, Any]:
    """The loan's own columns: from whichever row fills them; two rows saying different things are refused."""
    merged: dict[str, Any] = {}
    bad: list[RowError] = []
    for r in rows:
        for fname in LOAN_FIELDS:
            value = r.loan.get(fname)
            if value is None:
                continue
            if fname in merged and merged[fname] != value:
                bad.append(RowError(r.n, number, f"{COLUMNS[fname][0]}与本贷款第一行不一致"))
            merged.setdefault(fname, value)
    for fname in ("name", "product", "principal", "start_date"):
        if merged.get(fname) is None:
            bad.append(RowError(rows[0].n, number, f"缺少{COLUMNS[fname][0]}"))
    if not merged.get("phone") and not merged.get("id_number"):
        bad.append(RowError(rows[0].n, number, "手机号和身份证号至少填写一个"))
    if merged.get("principal") == 0:
        bad.append(RowError(rows[0].n, number, "本金必须大于 0"))
    if bad:
        raise _Refused("；".join(dict.fromkeys(e.reason for e in bad)), bad)
    return merged


def _product(session: Session, text: str) -> tuple[Product, ProductVersion]:
    found = list(session.scalars(select(Product).where(or_(func.lower(Product.code) == text.lower(),
                                                           Product.name == text)).limit(2)))
    if len(found) != 1:
        raise _Refused(f"找不到产品“{text}”（请填写产品名称或产品代码）" if not found
                       else f"产品“{text}”对应多个产品，请填写产品代码")
    product = found[0]
    if product.current_version_id is None:
        raise _Refused(f"产品“{text}”还没有发布的版本")
    return product, products.get_version(session, product.current_version_id)


def _schedule(number: str, rows: list[_Row], loan: dict[str, Any], terms: products.ProductTerms) -> \
        tuple[list[tuple[int, date, int, int, int]], bool]:
    """[(number, due date, principal, interest, fee)] and whether it was given (else generated)."""
    given = sorted((r for r in rows if r.due is not None), key=lambda r: r.number or 0)
    start: date = loan["start_date"]
    if not given:
        if loan.get("term") is None:
            raise _Refused("既没有还款计划行，也没有期数：无法生成还款计划", [RowError(rows[0].n, number, "缺少期数")])
        quote = products.quote_terms(terms, loan["principal"], loan["term"], start)
        return [(p.number, p.due_date, p.principal, p.interest, p.fee) for p in quote.schedule.periods], False
    bad: list[RowError] = []
    previous: date = start
    for k, r in enumerate(given, start=1):
        assert r.due_date is not None and r.due is not None
        if r.number != k:
            bad.append(RowError(r.n, number, f"期次应为 {k}（期次须从 1 起连续，不重复）"))
        elif r.due_date <= previous:
            bad.append(RowError(r.n, number, f"到期日 {r.due_date.isoformat()} 须晚于"
                                             f"{'放款日期' if k == 1 else '上一期到期日'} {previous.isoformat()}"))
        previous = max(previous, r.due_date)
    if loan.get("term") is not None and loan["term"] != len(given):
        bad.append(RowError(given[-1].n, number, f"期数 {loan['term']} 与还款计划行数 {len(given)} 不符"))
    total = sum(r.due[0] for r in given if r.due is not None)
    if not bad and total != loan["principal"]:
        bad.append(RowError(given[-1].n, number, f"各期应还本金合计 {format_yuan(total)} 不等于本金 "
                                                 f"{format_yuan(loan['principal'])}"))
    if bad:
        raise _Refused("还款计划有误：" + "；".join(f"第 {e.row} 行 {e.reason}" for e in bad), bad)
    return [(r.number or 0, r.due_date or start, *(r.due or (0, 0, 0))) for r in given], True


def _create(session: Session, number: str, rows: list[_Row], viewer: Viewer | None, file_name: str) -> LoanResult:
    loan_fields = _loan_fields(number, rows)
    product, version = _product(session, loan_fields["product"])
    terms = products.ProductTerms.of(version)
    if loan_fields.get("annual_rate") is not None:
        terms = replace(terms, annual_rate=loan_fields["annual_rate"])
    schedule, given = _schedule(number, rows, loan_fields, terms)
    staff_id = viewer.staff_id if viewer else None
    try:
        intake = customers.intake(session, customers.CustomerInput(
            name=loan_fields["name"], phone=loan_fields.get("phone"), id_number=loan_fields.get("id_number"),
            source="loan_import", source_detail=f"存量贷款导入 {file_name}"[:120]),
            channel="loan_import", actor_staff_id=staff_id)
    except ValidationFailed as exc:
        raise _Refused(f"客户信息有误：{exc.message}", [RowError(rows[0].n, number, exc.message)]) from None
    customer = intake.customer
    start: date = loan_fields["start_date"]
    now = clock.now()
    signed_at = datetime.combine(start, datetime.min.time(), tzinfo=clock.BUSINESS_TZ).astimezone(UTC)
    try:
        with session.begin_nested():
            app = Application(customer_id=customer.id, product_id=product.id, product_version_id=version.id,
                              definition_id=definitions.ensure_active(session).id, current_node_id=None,
                              status="disbursed", requested_amount=loan_fields["principal"],
                              term_months=len(schedule), channel="import", idempotency_key=key_for(number),
                              fields={"source_loan_number": number, "imported_from": file_name[:200]},
                              created_by_staff_id=staff_id, created_at=signed_at, updated_at=now, closed_at=None)
            session.add(app)
            session.flush()
    except IntegrityError:
        raise _Skipped() from None
    contract_number = f"{contracts.PREFIX}{start:%Y%m%d}-{contracts.next_number(session, contracts.PREFIX, start):06d}"
    contract = Contract(
        number=contract_number, application_id=app.id, customer_id=customer.id, product_version_id=version.id,
        funder_id=product.funder_id, status="disbursed", principal_amount=loan_fields["principal"],
        term_months=len(schedule), annual_rate=Decimal(terms.annual_rate), parties={
            "customer_name": contracts.mask_name(customer.name), "customer_id_number_masked": customer.id_number_masked,
            "customer_phone_masked": customer.phone_masked, "funder_name": product.funder.name,
            "funder_type": product.funder.funder_type, "product_name": product.name, "product_code": product.code,
            "product_version": version.version, "source_loan_number": number},
        snapshot={"signed_on": start.isoformat(),
                  "product": {"code": product.code, "name": product.name, "version": version.version,
                              "version_id": version.id},
                  "terms": contracts.jsonable(asdict(terms)),
                  "imported": {"loan_number": number, "file": file_name[:200], "schedule": "given" if given
                               else "generated", "at": now.isoformat()}},
        apr_rate=None, start_date=start, maturity_date=schedule[-1][1], created_at=now, signed_at=signed_at,
        signed_by_staff_id=staff_id)
    session.add(contract)
    session.flush()
    balance = loan_fields["principal"]
    lines = []
    for n, due_date, principal, interest, fee in schedule:
        balance -= principal
        lines.append({"contract_id": contract.id, "number": n, "due_date": due_date, "principal_amount": principal,
                      "interest_amount": interest, "fee_amount": fee, "total_amount": principal + interest + fee,
                      "balance_amount": balance})
    session.add_all([ContractLine(**line) for line in lines])
    disbursement = Disbursement(contract_id=contract.id, amount=loan_fields["principal"], disbursement_date=start,
                                funder_reference=f"IMPORT-{number}"[:64], by_staff_id=staff_id, created_at=now)
    session.add(disbursement)
    session.flush()
    loan = Loan(contract_id=contract.id, application_id=app.id, customer_id=customer.id,
                disbursement_id=disbursement.id, principal_amount=loan_fields["principal"], status="active",
                start_date=start, servicing_started_at=now, created_at=now)
    session.add(loan)
    session.flush()
    session.add_all([LoanInstallment(loan_id=loan.id, number=n, due_date=d, principal_amount=p, interest_amount=i,
                                     fee_amount=f, paid_principal_amount=0, paid_interest_amount=0,
                                     paid_fee_amount=0, status="pending")
                     for n, d, p, i, f in schedule])
    session.flush()
    versions.ensure_original(session, loan, state.installments(session, loan.id))
    _post_paid(session, loan, number, rows, viewer)
    state.refresh(session, loan, clock.today())
    customers.set_stage(session, customer.id, "repaying" if loan.status == "active" else "closed",
                        actor_staff_id=staff_id)
    audit.record(session, "lending.loan.import", entity_type="lending_loan", entity_id=loan.id,
                 after={"loan_number": number, "customer_id": customer.id, "customer_created": intake.created,
                        "principal": loan.principal_amount, "periods": len(schedule),
                        "schedule": "given" if given else "generated", "file": file_name[:200]})
    customers.record_event(session, customer.id, "lending_loan_imported",
                           f"存量贷款 {number} 已导入为贷款 #{loan.id}：本金 {format_yuan(loan.principal_amount)}，"
                           f"{len(schedule)} 期", actor_staff_id=staff_id, ref_type="lending_loan", ref_id=loan.id)
    return LoanResult(number, [r.n for r in rows], "created", loan.id, customer.id)


def _post_paid(session: Session, loan: Loan, number: str, rows: list[_Row], viewer: Viewer | None) -> None:
    """The paid amounts, as historical repayments in value-date order (file order within a day)."""
    paid = sorted((r for r in rows if r.paid), key=lambda r: (r.paid_date or date.min, r.n))
    for k, r in enumerate(paid, start=1):
        assert r.paid is not None and r.paid_date is not None
        if r.paid_date < loan.start_date:
            raise _Refused(f"第 {r.n} 行还款日期早于放款日期",
                           [RowError(r.n, number, f"还款日期 {r.paid_date.isoformat()} 早于放款日期")])
        try:
            # viewer None: the importer's right was checked up front; a new customer may sit in a pool
            repayments.record_repayment(session, loan.id, viewer=None, amount=r.paid,
                                        external_reference=f"IMPORT-{number}-{k}"[:64], channel="other",
                                        repayment_date=r.paid_date, note=f"存量贷款导入（第 {r.n} 行）")
        except AppError as exc:
            raise _Refused(f"第 {r.n} 行已还金额无法入账：{exc.message}", [RowError(r.n, number, exc.message)]) from None


class _Skipped(Exception):
    pass


# --- the file -------------------------------------------------------------------------------------------------

def ensure_importer(viewer: Viewer | None) -> None:
    if viewer is not None and viewer.role not in IMPORTERS:
        raise PermissionDenied("只有财务、经理或管理员可以导入存量贷款")


def import_book(session: Session, path: Path, *, viewer: Viewer | None, file_name: str | None = None) -> ImportReport:
    """Import the loan book in ``path`` (see the module docstring). Each loan in its own savepoint; only flushes."""
    ensure_importer(viewer)
    name = file_name or path.name
    report = ImportReport(name)
    groups: dict[str, list[_Row]] = {}
    broken: dict[str, list[RowError]] = {}
    for n, cells in _rows(path):
        number = cell_text(cells.get("loan_number"))
        if not number:
            report.errors.append(RowError(n, None, "缺少贷款编号"))
            continue
        if len(number) > MAX_LOAN_NUMBER:
            report.errors.append(RowError(n, number[:20], f"贷款编号超过 {MAX_LOAN_NUMBER} 个字符"))
            continue
        try:
            groups.setdefault(number, []).append(_parse(n, cells))
        except ValidationFailed as exc:
            groups.setdefault(number, [])
            broken.setdefault(number, []).append(RowError(n, number, exc.message))
    if not groups and not report.errors:
        raise ImportHeadersInvalid("文件只有表头，没有数据行")
    existing = _already_imported(session, list(groups))
    for number, rows in groups.items():
        row_numbers = sorted([r.n for r in rows] + [e.row for e in broken.get(number, [])])
        if number in existing:
            report.loans.append(LoanResult(number, row_numbers, "skipped", existing[number],
                                           reason=f"贷款编号 {number} 已导入（贷款 #{existing[number]}），未重复导入"))
            continue
        if number in broken:
            report.errors.extend(broken[number])
            report.loans.append(LoanResult(number, row_numbers, "refused", reason="；".join(
                f"第 {e.row} 行：{e.reason}" for e in broken[number])))
            continue
        try:
            with session.begin_nested():
                report.loans.append(_create(session, number, rows, viewer, name))
        except _Skipped:
            report.loans.append(LoanResult(number, row_numbers, "skipped", reason=f"贷款编号 {number} 已导入，未重复导入"))
        except _Refused as exc:
            report.errors.extend(exc.rows or [RowError(rows[0].n, number, exc.reason)])
            report.loans.append(LoanResult(number, row_numbers, "refused", reason=exc.reason))
        except AppError as exc:
            report.errors.append(RowError(rows[0].n, number, exc.message))
            report.loans.append(LoanResult(number, row_numbers, "refused", reason=exc.message))
    report.errors.sort(key=lambda e: e.row)
    audit.record(session, "lending.loan_book.import", entity_type="lending_loan_book", entity_id=None,
                 after={"file": name, "created": report.count("created"), "skipped": report.count("skipped"),
                        "refused": report.count("refused"), "bad_rows": len(report.errors)})
    return report


def _already_imported(session: Session, numbers: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    keys = [key_for(n) for n in numbers]
    for i in range(0, len(keys), 1000):
        for key, loan_id in session.execute(select(Application.idempotency_key, Loan.id)
                                            .join(Loan, Loan.application_id == Application.id)
                                            .where(Application.idempotency_key.in_(keys[i:i + 1000]))):
            found[key.removeprefix(KEY_PREFIX)] = loan_id
    return found
