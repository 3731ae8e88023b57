"""Service agreements (居间服务协议 / 签单): recorded by sales, 合同确认 by finance, approved by a supervisor.

- Only for a customer who came to a visit (邀约到店: a visit marked arrived).
- The all-in annualised cost (:mod:`finance.compliance`) is checked on every version of the terms and
  shown on every page; above the cap the terms are refused with the figure.
- Once finance confirms, the amounts are locked: a change is an :class:`Amendment` that finance confirms
  (applied, version + 1, audited) or rejects. A direct change to a confirmed amount is refused.
- Status moves by conditional UPDATE: of two clerks confirming at once exactly one wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from crm.models import Customer, Staff, StaffStatus, Visit, VisitStatus
from crm.scope import Viewer, can_see_owner
from finance import compliance
from finance.access import APPROVERS, FINANCE, SIGNERS, case_filter, ensure_case_visible, require
from finance.amounts import fen
from finance.exceptions import FinanceInvalid, RecordNotFound, StateConflict
from finance.models import AGREEMENT_STATUS_LABELS, Agreement, Amendment
from lending.contracts import next_number
from lending.schedule.terms import RepaymentMethod

TERM_FIELDS = ("loan_amount", "term_months", "funder_annual_rate", "repayment_method", "funder_fee_amount",
               "service_fee_rate", "service_fee_fixed_amount", "deposit_amount", "other_fees")
TERM_LABELS = {
    "loan_amount": "贷款金额", "term_months": "期限（月）", "funder_annual_rate": "资方年利率",
    "repayment_method": "还款方式", "funder_fee_amount": "资方费用", "service_fee_rate": "服务费率",
    "service_fee_fixed_amount": "固定服务费", "deposit_amount": "定金", "other_fees": "其他约定费用",
}


class AmountLocked(StateConflict):
    code = "amount_locked"
    message = "合同已确认，金额已锁定；如需修改请提交变更，由财务重新确认"


@dataclass
class AgreementInput:
    customer_id: int
    sales_staff_id: int
    case_officer_id: int
    loan_amount: int
    term_months: int
    funder_annual_rate: Decimal
    repayment_method: str
    service_fee_rate: Decimal = Decimal(0)
    service_fee_fixed_amount: int = 0
    deposit_amount: int = 0
    funder_fee_amount: int = 0
    other_fees: list[dict[str, Any]] = field(default_factory=list)
    number: str | None = None
    signed_date: date | None = None
    application_id: int | None = None
    note: str | None = None


def _clean_terms(values: dict[str, Any]) -> dict[str, Any]:
    """Validate the term fields present in ``values``; Chinese reasons, field names for programs."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in ("loan_amount",):
            out[name] = fen(value, TERM_LABELS[name], name)
        elif name in ("funder_fee_amount", "service_fee_fixed_amount", "deposit_amount"):
            out[name] = fen(value, TERM_LABELS[name], name, allow_zero=True)
        elif name == "term_months":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 360:
                raise FinanceInvalid("期限须是 1 到 360 之间的整数（月）", field=name)
            out[name] = value
        elif name in ("funder_annual_rate", "service_fee_rate"):
            if isinstance(value, float | bool) or not isinstance(value, Decimal | int | str):
                raise FinanceInvalid(f"{TERM_LABELS[name]}须是小数（如 0.12），不能是浮点数", field=name)
            try:
                rate = Decimal(str(value))
            except ArithmeticError:
                raise FinanceInvalid(f"{TERM_LABELS[name]}格式不正确：{value}", field=name) from None
            if not rate.is_finite() or rate < 0 or rate >= 1:
                raise FinanceInvalid(f"{TERM_LABELS[name]}须在 0 到 100% 之间", field=name)
            out[name] = rate
        elif name == "repayment_method":
            try:
                out[name] = RepaymentMethod(str(value)).value
            except ValueError:
                raise FinanceInvalid(f"还款方式不正确：{value}", field=name) from None
        elif name == "other_fees":
            fees = []
            for item in value or []:
                label = str(item.get("name") or "").strip()
                if not label or len(label) > 40:
                    raise FinanceInvalid("其他费用须有名称（最多 40 字）", field="other_fees")
                fees.append({"name": label, "amount": fen(item.get("amount"), f"其他费用「{label}」", "other_fees")})
            out[name] = fees
    return out


def _terms_of(values: dict[str, Any]) -> compliance.Terms:
    return compliance.Terms(
        loan_amount=values["loan_amount"], term_months=values["term_months"],
        funder_annual_rate=values["funder_annual_rate"], repayment_method=values["repayment_method"],
        funder_fee_amount=values["funder_fee_amount"], service_fee_rate=values["service_fee_rate"],
        service_fee_fixed_amount=values["service_fee_fixed_amount"],
        other_fees_amount=sum(f["amount"] for f in values["other_fees"] or []))


def current_terms(agreement: Agreement) -> dict[str, Any]:
    return {name: getattr(agreement, name) if name != "other_fees" else list(agreement.other_fees or [])
            for name in TERM_FIELDS}


def terms_of(agreement: Agreement) -> compliance.Terms:
    return _terms_of(current_terms(agreement))


def _json(values: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in values.items()}


def _active_staff(session: Session, staff_id: int, label: str, field_name: str) -> Staff:
    staff = session.get(Staff, staff_id) if isinstance(staff_id, int) else None
    if staff is None or staff.status != StaffStatus.ACTIVE:
        raise FinanceInvalid(f"{label}不存在或已离职", field=field_name)
    return staff


def has_arrived_visit(session: Session, customer_id: int) -> bool:
    return session.scalar(select(Visit.id).where(Visit.customer_id == customer_id,
                                                 Visit.status == VisitStatus.ARRIVED).limit(1)) is not None


def quote(terms: dict[str, Any], *, signed_date: date | None = None, viewer: Viewer | None) -> compliance.Quote:
    """试算 before saving: the all-in annualised cost of the terms (IRR, as :func:`create_agreement` checks it)
    and the cap; nothing is written. Above the cap: refused with the figure, as the agreement would be."""
    require(viewer, SIGNERS, "试算签单")
    defaults = {"funder_fee_amount": 0, "service_fee_rate": Decimal(0), "service_fee_fixed_amount": 0,
                "deposit_amount": 0, "other_fees": [], "repayment_method": RepaymentMethod.EQUAL_INSTALLMENT.value}
    values = _clean_terms({name: terms.get(name, defaults.get(name)) for name in TERM_FIELDS})
    return compliance.check_quote(compliance.quote(_terms_of(values), signed_date))


def create_agreement(session: Session, data: AgreementInput, *, viewer: Viewer | None) -> Agreement:
    """签单: record a signed agreement (status draft, 待合同确认)."""
    require(viewer, SIGNERS, "录入签单")
    customer = session.get(Customer, data.customer_id)
    if customer is None or (viewer is not None and not can_see_owner(session, viewer, customer.owner_id)):
        raise FinanceInvalid("客户不存在或不在您的数据范围内", field="customer_id")
    if not has_arrived_visit(session, customer.id):
        raise FinanceInvalid("该客户还没有到店记录（邀约到店），不能签单", field="customer_id")
    _active_staff(session, data.sales_staff_id, "营销专员", "sales_staff_id")
    _active_staff(session, data.case_officer_id, "做单专员", "case_officer_id")
    values = _clean_terms({name: getattr(data, name) for name in TERM_FIELDS})
    apr = compliance.check(_terms_of(values), data.signed_date)
    day = data.signed_date or clock.today()
    if day > clock.today():
        raise FinanceInvalid("签单日期不能晚于今天", field="signed_date")
    number = (data.number or "").strip()
    if len(number) > 32:
        raise FinanceInvalid("协议编号最多 32 位", field="number")
    if not number:
        number = f"FA{day:%Y%m%d}{next_number(session, 'FA', day):04d}"
    if session.scalar(select(Agreement.id).where(Agreement.number == number)) is not None:
        raise StateConflict(f"协议编号 {number} 已存在", code="agreement_number_taken")
    agreement = Agreement(
        number=number, customer_id=customer.id, application_id=data.application_id,
        sales_staff_id=data.sales_staff_id, case_officer_id=data.case_officer_id, signed_date=day,
        status="draft", version=1, apr_rate=apr, note=(data.note or "").strip()[:300] or None,
        other_fees_amount=sum(f["amount"] for f in values["other_fees"]),
        created_by_staff_id=viewer.staff_id if viewer else None, created_at=clock.now(), **values)
    try:
        with session.begin_nested():
            session.add(agreement)
            session.flush()
    except IntegrityError:
        raise StateConflict(f"协议编号 {number} 已存在或该贷款申请已有签单", code="agreement_number_taken") from None
    audit.record(session, "finance.agreement_created", entity_type="finance_agreement", entity_id=agreement.id,
                 after={"number": number, "loan_amount": agreement.loan_amount, "apr": str(apr)})
    return agreement


def get_agreement(session: Session, viewer: Viewer | None, agreement_id: int, *,
                  for_update: bool = False) -> Agreement:
    stmt = select(Agreement).where(Agreement.id == agreement_id)
    if for_update:
        stmt = stmt.with_for_update()
    agreement = session.scalar(stmt)
    if agreement is None:
        raise RecordNotFound("签单不存在或不在您的数据范围内")
    ensure_case_visible(session, viewer, agreement)
    return agreement


def _move(session: Session, agreement: Agreement, source: str | tuple[str, ...], target: str,
          **values: Any) -> None:
    sources = (source,) if isinstance(source, str) else source
    moved = session.execute(update(Agreement).where(Agreement.id == agreement.id, Agreement.status.in_(sources))
                            .values(status=target, **values).execution_options(synchronize_session=False)).rowcount
    session.refresh(agreement)
    if moved != 1:
        raise StateConflict(f"签单 {agreement.number} 当前状态为「{AGREEMENT_STATUS_LABELS[agreement.status]}」，"
                            "可能已被他人处理，请刷新后重试")


def confirm(session: Session, agreement_id: int, *, viewer: Viewer | None) -> Agreement:
    """合同确认 by finance: the amounts are locked from now on."""
    require(viewer, FINANCE, "做合同确认")
    agreement = get_agreement(session, viewer, agreement_id)
    _move(session, agreement, "draft", "confirmed", confirmed_at=clock.now(),
          confirmed_by_staff_id=viewer.staff_id if viewer else None)
    audit.record(session, "finance.agreement_confirmed", entity_type="finance_agreement", entity_id=agreement.id)
    return agreement


def approve(session: Session, agreement_id: int, *, viewer: Viewer | None) -> Agreement:
    """主管审批: the agreement goes on the deposit list."""
    require(viewer, APPROVERS, "审批签单")
    agreement = get_agreement(session, viewer, agreement_id)
    _move(session, agreement, "confirmed", "approved", approved_at=clock.now(),
          approved_by_staff_id=viewer.staff_id if viewer else None)
    audit.record(session, "finance.agreement_approved", entity_type="finance_agreement", entity_id=agreement.id)
    return agreement


def cancel(session: Session, agreement_id: int, *, viewer: Viewer | None, reason: str) -> Agreement:
    """Cancel an agreement before any money was taken (draft, confirmed or approved)."""
    require(viewer, FINANCE | APPROVERS, "取消签单")
    if not (reason or "").strip():
        raise FinanceInvalid("请填写取消原因", field="reason")
    agreement = get_agreement(session, viewer, agreement_id)
    from finance.models import Deposit

    if session.scalar(select(Deposit.id).where(Deposit.agreement_id == agreement.id,
                                               Deposit.status != "voided").limit(1)) is not None:
        raise StateConflict("该签单已收定金，请先退定金或作废定金再取消")
    _move(session, agreement, ("draft", "confirmed", "approved"), "cancelled", cancelled_at=clock.now())
    audit.record(session, "finance.agreement_cancelled", entity_type="finance_agreement", entity_id=agreement.id,
                 detail=reason.strip()[:200])
    return agreement


def update_terms(session: Session, agreement_id: int, changes: dict[str, Any], *, viewer: Viewer | None) -> Agreement:
    """Change the terms of a draft; once confirmed the amounts are locked (refused: propose an amendment)."""
    require(viewer, SIGNERS, "修改签单")
    agreement = get_agreement(session, viewer, agreement_id, for_update=True)
    if agreement.status != "draft":
        raise AmountLocked()
    cleaned = _clean_terms({k: v for k, v in changes.items() if k in TERM_FIELDS})
    merged = {**current_terms(agreement), **cleaned}
    apr = compliance.check(_terms_of(merged), agreement.signed_date)
    before = _json({k: getattr(agreement, k) for k in cleaned})
    for name, value in cleaned.items():
        setattr(agreement, name, value)
    agreement.other_fees_amount = sum(f["amount"] for f in merged["other_fees"] or [])
    agreement.apr_rate = apr
    session.flush()
    audit.record(session, "finance.agreement_updated", entity_type="finance_agreement", entity_id=agreement.id,
                 before=before, after=_json(cleaned))
    return agreement


def propose_amendment(session: Session, agreement_id: int, changes: dict[str, Any], *, reason: str,
                      viewer: Viewer | None) -> Amendment:
    """A change to a confirmed agreement, waiting for finance (one pending change at a time)."""
    require(viewer, SIGNERS, "提交签单变更")
    agreement = get_agreement(session, viewer, agreement_id, for_update=True)
    if agreement.status in ("draft",):
        raise FinanceInvalid("合同尚未确认，可直接修改", field="agreement_id")
    if agreement.status in ("settled", "cancelled"):
        raise StateConflict(f"签单已{AGREEMENT_STATUS_LABELS[agreement.status]}，不能变更")
    if not (reason or "").strip():
        raise FinanceInvalid("请填写变更原因", field="reason")
    cleaned = _clean_terms({k: v for k, v in changes.items() if k in TERM_FIELDS})
    current = current_terms(agreement)
    cleaned = {k: v for k, v in cleaned.items() if v != current[k]}
    if not cleaned:
        raise FinanceInvalid("没有要变更的金额或条款", field="changes")
    compliance.check(_terms_of({**current, **cleaned}), agreement.signed_date)
    if session.scalar(select(Amendment.id).where(Amendment.agreement_id == agreement.id,
                                                 Amendment.status == "pending")) is not None:
        raise StateConflict("该签单已有一项待确认的变更")
    amendment = Amendment(agreement_id=agreement.id, status="pending",
                          before=_json({k: current[k] for k in cleaned}), after=_json(cleaned),
                          reason=reason.strip()[:300], proposed_by_staff_id=viewer.staff_id if viewer else None,
                          proposed_at=clock.now())
    session.add(amendment)
    session.flush()
    audit.record(session, "finance.amendment_proposed", entity_type="finance_agreement", entity_id=agreement.id,
                 before=amendment.before, after=amendment.after, detail=amendment.reason)
    return amendment


def decide_amendment(session: Session, amendment_id: int, *, accept: bool, viewer: Viewer | None) -> Amendment:
    """Finance confirms (applies, version + 1) or rejects a pending amendment."""
    require(viewer, FINANCE, "确认签单变更")
    amendment = session.get(Amendment, amendment_id)
    if amendment is None:
        raise RecordNotFound("变更不存在")
    agreement = get_agreement(session, viewer, amendment.agreement_id, for_update=True)
    moved = session.execute(update(Amendment).where(Amendment.id == amendment.id, Amendment.status == "pending")
                            .values(status="confirmed" if accept else "rejected", decided_at=clock.now(),
                                    decided_by_staff_id=viewer.staff_id if viewer else None)
                            .execution_options(synchronize_session=False)).rowcount
    session.refresh(amendment)
    if moved != 1:
        raise StateConflict("该变更已处理")
    if accept:
        if agreement.status in ("settled", "cancelled"):
            raise StateConflict(f"签单已{AGREEMENT_STATUS_LABELS[agreement.status]}，不能变更")
        cleaned = _clean_terms({k: (Decimal(v) if k.endswith("_rate") else v) for k, v in amendment.after.items()})
        merged = {**current_terms(agreement), **cleaned}
        apr = compliance.check(_terms_of(merged), agreement.signed_date)
        for name, value in cleaned.items():
            setattr(agreement, name, value)
        agreement.other_fees_amount = sum(f["amount"] for f in merged["other_fees"] or [])
        agreement.apr_rate = apr
        agreement.version += 1
        session.flush()
    audit.record(session, "finance.amendment_confirmed" if accept else "finance.amendment_rejected",
                 entity_type="finance_agreement", entity_id=agreement.id, before=amendment.before,
                 after=amendment.after)
    return amendment


def amendments(session: Session, agreement_id: int) -> list[Amendment]:
    return list(session.scalars(select(Amendment).where(Amendment.agreement_id == agreement_id)
                                .order_by(Amendment.id.desc())))


def listing_query(viewer: Viewer, status: str | None, q: str | None) -> Select[Any]:
    """The agreement list's SELECT (scope and filters, no order): the page and the export."""
    stmt = select(Agreement, Customer).join(Customer, Customer.id == Agreement.customer_id).where(case_filter(viewer))
    if status:
        stmt = stmt.where(Agreement.status == status)
    if q and q.strip():
        stmt = stmt.where(Agreement.number.contains(q.strip(), autoescape=True))
    return stmt


def list_agreements(session: Session, viewer: Viewer, *, status: str | None = None, q: str | None = None,
                    limit: int = 50, offset: int = 0) -> list[tuple[Agreement, Customer]]:
    stmt = listing_query(viewer, status if status in AGREEMENT_STATUS_LABELS else None, q)
    return list(session.execute(stmt.order_by(Agreement.id.desc()).limit(limit).offset(offset)))


def count_by_status(session: Session, viewer: Viewer) -> dict[str, int]:
    return dict(session.execute(select(Agreement.status, func.count()).where(case_filter(viewer))
                                .group_by(Agreement.status)).all())
