"""Settlement (结算管理): after the loan is disbursed finance completes the charge, three people confirm the
internal voucher, finance closes the case (结单 → 已结算) and the money is posted.

- A settlement starts from ``lending.loan_disbursed`` (our own workflow; the agreement is found by its
  loan application, or as the customer's one case being worked) or is recorded by hand for an outside
  funder (funder, type, amount, date). The agreement shows 待结算.
- The charge: service fee on the disbursed amount (the agreement's rate and fixed fee) and the
  agreement's other fees, a discount (none / percent / fixed, never above the service fee), an
  installment fee, added fees by configured type, the customer's short-term loans repaid (principal,
  interest, cost), the deposit held applied; what is left is paid, split across methods (the split must
  add up exactly). Rebates (返点) to partners are recorded with it (never above the fee revenue).
- Charging again bumps ``revision`` and clears the confirmations; a confirmation names the revision it saw.
- A charge names the revision it was made against (``expected_revision``, required: of two clerks charging
  at once exactly one wins) and records the agreement's version it was computed from; 结单 is refused when
  an amendment was confirmed since (the charge must be made again). The all-in annualised cost is checked
  again with what the charge adds (the disbursed amount, added fees, the installment fee, after the
  discount) at the charge and at 结单: above the cap it is refused with the figure.
- 结单 moves ``charged`` → ``settled`` by one conditional UPDATE: of two clerks exactly one wins; the
  other is told the case was settled by somebody else. The posting's unique key stands behind it.

Ledger at 结单: Dr cash/bank per method, Dr 客户定金 (applied) / Cr 服务费收入, Cr 客户借款 (principal),
Cr 借款利息及费用收入; and Dr 返点支出 / Cr 应付返点 for the rebates.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.money import format_yuan
from crm.models import Customer, Role
from crm.scope import Viewer
from finance import agreements, compliance, deposits, hooks, ledger
from finance.access import FINANCE, case_filter, require
from finance.amounts import fen
from finance.exceptions import FinanceInvalid, RecordNotFound, StateConflict
from finance.models import (
    FUNDER_KIND_LABELS,
    METHOD_LABELS,
    Agreement,
    Amendment,
    CustomerLoan,
    DepositRefund,
    FeeType,
    Settlement,
    SettlementFee,
    SettlementPayment,
    SettlementRebate,
)

log = logging.getLogger(__name__)

CONFIRMERS = {"officer": "做单专员", "supervisor": "做单主管", "sales": "营销专员"}
SUPERVISOR_ROLES = frozenset({Role.SUPERVISOR, Role.MANAGER, Role.ADMIN})
# lending's funder types mapped onto the finance center's (银行/消金/信保/小贷).
_LENDING_FUNDER_TYPES = {"bank": "bank", "consumer_finance": "consumer_finance", "guarantee": "guarantee",
                         "microloan": "microloan"}


class NotDisbursed(StateConflict):
    code = "not_disbursed"
    message = "贷款尚未放款，不能结算"


class SettlementTaken(StateConflict):
    code = "settlement_conflict"
    message = "该案件已被他人结单，请刷新查看"


# --- start --------------------------------------------------------------------------------------------


def _open(session: Session, agreement: Agreement, **values: Any) -> Settlement:
    moved = session.execute(update(Agreement).where(Agreement.id == agreement.id, Agreement.status == "working")
                            .values(status="disbursed").execution_options(synchronize_session=False)).rowcount
    session.refresh(agreement)
    if moved != 1:
        raise StateConflict(f"签单 {agreement.number} 不在做单中（需已确认定金），不能登记放款")
    settlement = Settlement(agreement_id=agreement.id, status="pending", revision=0, created_at=clock.now(), **values)
    try:
        with session.begin_nested():
            session.add(settlement)
            session.flush()
    except IntegrityError:
        raise StateConflict("该签单已有结算记录") from None
    audit.record(session, "finance.settlement_opened", entity_type="finance_settlement", entity_id=settlement.id,
                 after={"agreement": agreement.number, "amount": settlement.disbursed_amount,
                        "source": settlement.source})
    return settlement


def on_loan_disbursed(session: Session, loan_id: int) -> None:
    """Runs inside lending's ``lending.loan_disbursed`` unit of work: the case goes to 待结算. Idempotent."""
    from lending.models import Contract, Funder, Loan
    from lending.models import Disbursement as LendingDisbursement

    if session.scalar(select(Settlement.id).where(Settlement.loan_id == loan_id)) is not None:
        return
    loan = session.get(Loan, loan_id)
    if loan is None:
        return
    agreement = session.scalar(select(Agreement).where(Agreement.application_id == loan.application_id))
    if agreement is None:
        working = list(session.scalars(select(Agreement).where(Agreement.customer_id == loan.customer_id,
                                                               Agreement.status == "working",
                                                               Agreement.application_id.is_(None)).limit(2)))
        agreement = working[0] if len(working) == 1 else None
    if agreement is None or agreement.status != "working":
        log.info("finance: loan %s has no agreement being worked; no settlement opened", loan_id)
        return
    contract = session.get(Contract, loan.contract_id)
    funder = session.get(Funder, contract.funder_id) if contract else None
    paid = session.get(LendingDisbursement, loan.disbursement_id)
    _open(session, agreement, source="lending", loan_id=loan.id, funder_name=funder.name if funder else "—",
          funder_type=_LENDING_FUNDER_TYPES.get(funder.funder_type, "other") if funder else "other",
          disbursed_amount=loan.principal_amount,
          disbursed_date=paid.disbursement_date if paid else loan.start_date)


def record_disbursement(session: Session, agreement_id: int, *, funder_name: str, funder_type: str, amount: int,
                        disbursed_date: date | None, viewer: Viewer | None) -> Settlement:
    """An outside funder's disbursement recorded by hand: the case goes to 待结算."""
    require(viewer, FINANCE, "登记放款")
    agreement = agreements.get_agreement(session, viewer, agreement_id, for_update=True)
    name = (funder_name or "").strip()
    if not name or len(name) > 80:
        raise FinanceInvalid("请填写资方名称（最多 80 字）", field="funder_name")
    if funder_type not in FUNDER_KIND_LABELS:
        raise FinanceInvalid(f"资方类型不正确：{funder_type}", field="funder_type")
    day = disbursed_date or clock.today()
    if day > clock.today():
        raise FinanceInvalid("放款日期不能晚于今天", field="disbursed_date")
    return _open(session, agreement, source="manual", funder_name=name, funder_type=funder_type,
                 disbursed_amount=fen(amount, "放款金额", "amount"), disbursed_date=day)


# --- the charge ---------------------------------------------------------------------------------------


@dataclass
class ChargeInput:
    discount_kind: str = "none"
    discount_rate: Decimal | None = None  # percent: a fraction of the service fee
    discount_amount: int = 0  # fixed
    installment_fee_amount: int = 0
    fees: list[tuple[int, int]] = field(default_factory=list)  # (fee type id, amount)
    payments: list[tuple[str, int]] = field(default_factory=list)  # (method, amount)
    rebates: list[tuple[str, int]] = field(default_factory=list)  # (partner, amount)
    expected_revision: int | None = None


@dataclass(frozen=True)
class Charge:
    service_fee_amount: int
    discount_amount: int
    installment_fee_amount: int
    extra_fees_amount: int  # the agreement's other fees + the added fees
    loan_principal_amount: int
    loan_income_amount: int
    deposit_applied_amount: int

    @property
    def fee_revenue_amount(self) -> int:
        return self.service_fee_amount - self.discount_amount + self.installment_fee_amount + self.extra_fees_amount

    @property
    def loan_repaid_amount(self) -> int:
        return self.loan_principal_amount + self.loan_income_amount

    @property
    def total_due_amount(self) -> int:
        return self.fee_revenue_amount + self.loan_repaid_amount - self.deposit_applied_amount


def get_settlement(session: Session, viewer: Viewer | None, settlement_id: int) -> Settlement:
    settlement = session.get(Settlement, settlement_id)
    if settlement is None:
        raise RecordNotFound("结算记录不存在或不在您的数据范围内")
    agreements.get_agreement(session, viewer, settlement.agreement_id)
    return settlement


def settlement_for(session: Session, agreement_id: int) -> Settlement | None:
    return session.scalar(select(Settlement).where(Settlement.agreement_id == agreement_id))


def of_agreement(session: Session, viewer: Viewer | None, agreement_id: int) -> Settlement:
    """The case's settlement; refused when the loan has not been disbursed (nothing to settle yet)."""
    agreement = agreements.get_agreement(session, viewer, agreement_id)
    settlement = settlement_for(session, agreement.id)
    if settlement is None:
        raise NotDisbursed(f"签单 {agreement.number} 的贷款尚未放款，不能结算")
    return settlement


def _outstanding_loans(session: Session, agreement_id: int) -> list[CustomerLoan]:
    return list(session.scalars(select(CustomerLoan).where(CustomerLoan.agreement_id == agreement_id,
                                                           CustomerLoan.status == "outstanding")))


def compute(session: Session, settlement: Settlement, data: ChargeInput) -> Charge:
    """The charge's figures, validated (nothing written)."""
    agreement = session.get(Agreement, settlement.agreement_id)
    service_fee = compliance.service_fee(settlement.disbursed_amount, agreement.service_fee_rate,
                                         agreement.service_fee_fixed_amount)
    if data.discount_kind == "none":
        discount = 0
    elif data.discount_kind == "percent":
        rate = data.discount_rate
        if rate is None or isinstance(rate, float) or not isinstance(rate, Decimal) or not rate.is_finite() \
                or rate < 0 or rate > 1:
            raise FinanceInvalid("优惠比例须在 0 到 100% 之间", field="discount_rate")
        discount = int((Decimal(service_fee) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    elif data.discount_kind == "fixed":
        discount = fen(data.discount_amount, "优惠金额", "discount_amount", allow_zero=True)
        if discount > service_fee:
            raise FinanceInvalid(f"优惠金额 {format_yuan(discount)} 超过服务费 {format_yuan(service_fee)}",
                                 field="discount_amount")
    else:
        raise FinanceInvalid(f"优惠方式不正确：{data.discount_kind}", field="discount_kind")
    installment_fee = fen(data.installment_fee_amount, "分期手续费", "installment_fee_amount", allow_zero=True)
    types = {t.id: t for t in session.scalars(select(FeeType))}
    seen = set()
    added = 0
    for type_id, amount in data.fees:
        fee_type = types.get(type_id)
        if fee_type is None or not fee_type.active:
            raise FinanceInvalid("费用类型不存在或已停用", field="fees")
        if type_id in seen:
            raise FinanceInvalid(f"费用「{fee_type.name}」重复", field="fees")
        seen.add(type_id)
        added += fen(amount, f"费用「{fee_type.name}」", "fees")
    loans = _outstanding_loans(session, agreement.id)
    if session.scalar(select(DepositRefund.id).join(deposits.Deposit, deposits.Deposit.id == DepositRefund.deposit_id)
                      .where(deposits.Deposit.agreement_id == agreement.id, DepositRefund.status.in_(deposits.OPEN_REFUNDS))
                      .limit(1)) is not None:
        raise StateConflict("该签单有待确认或退款中的退定金申请，请先处理再结算")
    return Charge(service_fee_amount=service_fee, discount_amount=discount, installment_fee_amount=installment_fee,
                  extra_fees_amount=agreement.other_fees_amount + added,
                  loan_principal_amount=sum(ln.principal_amount for ln in loans),
                  loan_income_amount=sum(ln.interest_amount + ln.cost_amount for ln in loans),
                  deposit_applied_amount=deposits.held_amount(session, agreement.id))


def all_in_cost(agreement: Agreement, *, disbursed_amount: int, disbursed_date: date, service_fee_amount: int,
                discount_amount: int, extra_fees_amount: int, installment_fee_amount: int,
                refused: str) -> Decimal:
    """The borrower's all-in annualised cost as charged: the funder's terms on the disbursed amount, and every
    charge of ours (service fee after the discount, the agreement's other fees and the added fees, the
    installment fee) paid out of it. Above the cap: refused with the figure (``refused`` says what)."""
    terms = compliance.Terms(
        loan_amount=disbursed_amount, term_months=agreement.term_months,
        funder_annual_rate=agreement.funder_annual_rate, repayment_method=agreement.repayment_method,
        funder_fee_amount=agreement.funder_fee_amount, service_fee_rate=Decimal(0),
        service_fee_fixed_amount=service_fee_amount - discount_amount,
        other_fees_amount=extra_fees_amount + installment_fee_amount)
    return compliance.check(terms, disbursed_date, refused=refused, field="installment_fee_amount")


def charged_cost(session: Session, settlement: Settlement, *, refused: str) -> Decimal:
    return all_in_cost(session.get(Agreement, settlement.agreement_id), disbursed_amount=settlement.disbursed_amount,
                       disbursed_date=settlement.disbursed_date, service_fee_amount=settlement.service_fee_amount,
                       discount_amount=settlement.discount_amount, extra_fees_amount=settlement.extra_fees_amount,
                       installment_fee_amount=settlement.installment_fee_amount, refused=refused)


def stale_versions(session: Session, settlement: Settlement) -> tuple[int, int] | None:
    """(version charged, version now) when an amendment was confirmed after the charge, else None."""
    agreement = session.get(Agreement, settlement.agreement_id)
    seen = settlement.charged_agreement_version
    if seen is None:  # charged before the version was recorded: an amendment decided after the charge tells
        later = session.scalar(select(func.count()).select_from(Amendment).where(
            Amendment.agreement_id == agreement.id, Amendment.status == "confirmed",
            Amendment.decided_at > settlement.charged_at)) if settlement.charged_at else 0
        return (agreement.version - later, agreement.version) if later else None
    return (seen, agreement.version) if seen != agreement.version else None


def charge(session: Session, settlement_id: int, data: ChargeInput, *, viewer: Viewer | None) -> Settlement:
    """Finance completes (or corrects) the charge; the confirmations start over."""
    require(viewer, FINANCE, "结算收费")
    if data.expected_revision is None or isinstance(data.expected_revision, bool) \
            or not isinstance(data.expected_revision, int):
        raise FinanceInvalid("缺少收费版本（expected_revision：您看到的结算 revision，首次收费为 0），"
                             "以免两人同时收费互相覆盖；请刷新后重试", field="expected_revision")
    settlement = get_settlement(session, viewer, settlement_id)
    if settlement.status == "settled":
        raise StateConflict("该案件已结单，不能再修改收费")
    if session.scalar(select(SettlementPayment.id).where(SettlementPayment.settlement_id == settlement.id,
                                                         SettlementPayment.payment_order_id.is_not(None))) is not None:
        raise StateConflict("客户已通过微信支付了本次收费，不能再修改收费")
    figures = compute(session, settlement, data)
    agreement = session.get(Agreement, settlement.agreement_id)
    all_in_cost(agreement, disbursed_amount=settlement.disbursed_amount, disbursed_date=settlement.disbursed_date,
                service_fee_amount=figures.service_fee_amount, discount_amount=figures.discount_amount,
                extra_fees_amount=figures.extra_fees_amount, installment_fee_amount=figures.installment_fee_amount,
                refused="不能按此收费（请调整追加费用、分期手续费或优惠）")
    if figures.total_due_amount < 0:
        raise FinanceInvalid(f"已收定金超过应收合计 {format_yuan(figures.total_due_amount + figures.deposit_applied_amount)}"
                             "，请先退还多余定金", field="payments")
    payments: dict[str, int] = defaultdict(int)
    for method, amount in data.payments:
        if method not in METHOD_LABELS:
            raise FinanceInvalid(f"收款方式不正确：{method}", field="payments")
        payments[method] += fen(amount, f"{METHOD_LABELS[method]}收款金额", "payments")
    paid = sum(payments.values())
    if paid != figures.total_due_amount:
        raise FinanceInvalid(f"收款合计 {format_yuan(paid)} 与应收 {format_yuan(figures.total_due_amount)} 不符",
                             field="payments", due=figures.total_due_amount, paid=paid)
    rebates = []
    for partner, amount in data.rebates:
        name = (partner or "").strip()
        if not name or len(name) > 80:
            raise FinanceInvalid("返点须填写合作方名称（最多 80 字）", field="rebates")
        rebates.append((name, fen(amount, f"返点「{name}」", "rebates")))
    rebate_total = sum(a for _, a in rebates)
    if rebate_total > figures.fee_revenue_amount:
        raise FinanceInvalid(f"返点合计 {format_yuan(rebate_total)} 超过服务费收入 {format_yuan(figures.fee_revenue_amount)}",
                             field="rebates")
    conditions = [Settlement.id == settlement.id, Settlement.status.in_(("pending", "charged")),
                  Settlement.revision == data.expected_revision]
    moved = session.execute(update(Settlement).where(*conditions).values(
        status="charged", revision=Settlement.revision + 1, charged_agreement_version=agreement.version,
        service_fee_amount=figures.service_fee_amount,
        discount_kind=data.discount_kind, discount_rate=data.discount_rate if data.discount_kind == "percent" else None,
        discount_amount=figures.discount_amount, installment_fee_amount=figures.installment_fee_amount,
        extra_fees_amount=figures.extra_fees_amount, loan_repaid_amount=figures.loan_repaid_amount,
        deposit_applied_amount=figures.deposit_applied_amount, total_due_amount=figures.total_due_amount,
        rebate_amount=rebate_total, charged_at=clock.now(), charged_by_staff_id=viewer.staff_id if viewer else None,
        officer_confirmed_at=None, officer_confirmed_by_staff_id=None, supervisor_confirmed_at=None,
        supervisor_confirmed_by_staff_id=None, sales_confirmed_at=None, sales_confirmed_by_staff_id=None,
    ).execution_options(synchronize_session=False)).rowcount
    session.refresh(settlement)
    if moved != 1:
        raise StateConflict("结算已被他人修改或已结单，请刷新后重试")
    for table in (SettlementFee, SettlementPayment, SettlementRebate):
        session.execute(delete(table).where(table.settlement_id == settlement.id))
    session.add_all([SettlementFee(settlement_id=settlement.id, fee_type_id=t, amount=a) for t, a in data.fees])
    session.add_all([SettlementPayment(settlement_id=settlement.id, method=m, amount=a) for m, a in payments.items()])
    session.add_all([SettlementRebate(settlement_id=settlement.id, partner=p, amount=a) for p, a in rebates])
    session.flush()
    audit.record(session, "finance.settlement_charged", entity_type="finance_settlement", entity_id=settlement.id,
                 after={"revision": settlement.revision, "service_fee": figures.service_fee_amount,
                        "discount": figures.discount_amount, "total_due": figures.total_due_amount,
                        "rebates": rebate_total})
    return settlement


# --- confirmations and 结单 -----------------------------------------------------------------------------


def confirm_voucher(session: Session, settlement_id: int, as_who: str, *, revision: int,
                    viewer: Viewer) -> Settlement:
    """The case officer, the case supervisor or the salesperson confirms the internal voucher they saw."""
    if as_who not in CONFIRMERS:
        raise FinanceInvalid(f"确认人类型不正确：{as_who}", field="as")
    settlement = get_settlement(session, viewer, settlement_id)
    agreement = session.get(Agreement, settlement.agreement_id)
    allowed = {"officer": viewer.staff_id == agreement.case_officer_id,
               "sales": viewer.staff_id == agreement.sales_staff_id,
               "supervisor": viewer.role in SUPERVISOR_ROLES}[as_who]
    if not allowed:
        raise FinanceInvalid(f"您不是该案件的{CONFIRMERS[as_who]}，不能以此身份确认", field="as",
                             code="not_confirmer")
    at_col = getattr(Settlement, f"{as_who}_confirmed_at")
    moved = session.execute(update(Settlement).where(
        Settlement.id == settlement.id, Settlement.status == "charged", Settlement.revision == revision,
        at_col.is_(None)).values({f"{as_who}_confirmed_at": clock.now(),
                                  f"{as_who}_confirmed_by_staff_id": viewer.staff_id})
        .execution_options(synchronize_session=False)).rowcount
    session.refresh(settlement)
    if moved != 1:
        if settlement.revision != revision:
            raise StateConflict("收费已被财务修改，请查看最新的内部凭证后再确认")
        raise StateConflict(f"{CONFIRMERS[as_who]}已确认，或案件不在待确认状态")
    audit.record(session, "finance.voucher_confirmed", entity_type="finance_settlement", entity_id=settlement.id,
                 after={"as": as_who, "revision": revision})
    return settlement


def online_due(session: Session, settlement: Settlement) -> SettlementPayment | None:
    """The charge's WeChat part the customer may pay in the mini-program (not paid yet), or None."""
    if settlement.status != "charged":
        return None
    return session.scalar(select(SettlementPayment).where(
        SettlementPayment.settlement_id == settlement.id, SettlementPayment.method == "wechat",
        SettlementPayment.payment_order_id.is_(None)))


def receive_online(session: Session, settlement_id: int, *, revision: int, amount: int, out_trade_no: str,
                   payment_order_id: int, withheld: bool = False) -> SettlementPayment:
    """The charge's WeChat part paid through WeChat Pay before 结单, or withheld (代扣) under the customer's
    authorisation: the line names the payment (once) and the money is posted on arrival (Dr 微信账户, or
    Dr 代扣账户 when ``withheld``, / Cr 客户定金, applied at 结单). Refused (the money then waits for review in
    payments) when the charge changed since the bill was made, or the amount differs."""
    existing = session.scalar(select(SettlementPayment).where(SettlementPayment.payment_order_id == payment_order_id))
    if existing is not None:
        return existing
    settlement = session.scalar(select(Settlement).where(Settlement.id == settlement_id).with_for_update())
    if settlement is None:
        raise RecordNotFound("结算记录不存在")
    if settlement.status != "charged" or settlement.revision != revision:
        raise StateConflict("收费已变更或已结单，这笔在线付款需人工核对后退款或入账")
    line = online_due(session, settlement)
    if line is None or line.amount != amount:
        raise FinanceInvalid(f"在线付款 {format_yuan(amount)} 与应付的微信部分不符", field="amount")
    line.payment_order_id = payment_order_id
    session.flush()
    agreement = session.get(Agreement, settlement.agreement_id)
    ledger.post(session, source_type="settlement_payment", source_id=line.id, source_key=f"settlement_payment:{line.id}",
                memo=f"{'代扣' if withheld else '在线收'}服务费 {agreement.number}",
                lines=[ledger.Line("withholding" if withheld else "wechat", debit=amount),
                       ledger.Line("deposits_held", credit=amount)])
    audit.record(session, "finance.settlement_paid_online", entity_type="finance_settlement", entity_id=settlement.id,
                 after={"amount": amount, "out_trade_no": out_trade_no, "revision": revision})
    return line


def missing_confirmations(settlement: Settlement) -> list[str]:
    return [label for key, label in CONFIRMERS.items() if getattr(settlement, f"{key}_confirmed_at") is None]


def close(session: Session, settlement_id: int, *, viewer: Viewer | None) -> Settlement:
    """结单: finance closes the case; the money is posted and the customer's loans marked repaid."""
    require(viewer, FINANCE, "结单")
    settlement = get_settlement(session, viewer, settlement_id)
    if settlement.status == "pending":
        raise StateConflict("请先完成结算收费")
    if settlement.status == "charged":
        stale = stale_versions(session, settlement)
        if stale is not None:
            raise StateConflict(f"签单在收费后有变更（收费按第 {stale[0]} 版计算，现为第 {stale[1]} 版），收费金额已过期："
                                "请重新完成结算收费（重新收费后三方重新确认凭证）再结单", code="charge_stale")
        charged_cost(session, settlement, refused="不能结单（请重新完成结算收费，调整追加费用、分期手续费或优惠）")
    moved = session.execute(update(Settlement).where(
        Settlement.id == settlement.id, Settlement.status == "charged",
        Settlement.officer_confirmed_at.is_not(None), Settlement.supervisor_confirmed_at.is_not(None),
        Settlement.sales_confirmed_at.is_not(None),
    ).values(status="settled", settled_at=clock.now(), settled_by_staff_id=viewer.staff_id if viewer else None)
        .execution_options(synchronize_session=False)).rowcount
    session.refresh(settlement)
    if moved != 1:
        if settlement.status == "settled":
            raise SettlementTaken()
        missing = missing_confirmations(settlement)
        raise StateConflict(f"内部凭证尚未确认：{'、'.join(missing)}" if missing else "结算状态已变化，请刷新后重试")
    agreement = session.get(Agreement, settlement.agreement_id)
    loans = _outstanding_loans(session, agreement.id)
    principal = sum(ln.principal_amount for ln in loans)
    income = sum(ln.interest_amount + ln.cost_amount for ln in loans)
    if principal + income != settlement.loan_repaid_amount \
            or deposits.held_amount(session, agreement.id) != settlement.deposit_applied_amount:
        raise StateConflict("定金或客户借款在收费后有变化，请重新完成结算收费")
    fee_revenue = fee_revenue_of(settlement)
    payments = list(session.scalars(select(SettlementPayment).where(SettlementPayment.settlement_id == settlement.id)))
    # A part the customer paid online before 结单 was posted on arrival (Dr 微信账户 / Cr 客户定金): applied here.
    lines = [ledger.Line("deposits_held" if p.payment_order_id else ledger.method_account(p.method), debit=p.amount)
             for p in payments]
    lines += [ledger.Line("deposits_held", debit=settlement.deposit_applied_amount),
              ledger.Line("fee_revenue", credit=fee_revenue),
              ledger.Line("customer_loans", credit=principal),
              ledger.Line("loan_income", credit=income),
              ledger.Line("rebate_expense", debit=settlement.rebate_amount),
              ledger.Line("rebates_payable", credit=settlement.rebate_amount)]
    entry = ledger.post(session, source_type="settlement", source_id=settlement.id,
                        source_key=f"settlement:{settlement.id}", memo=f"结单 {agreement.number}", lines=lines,
                        by_staff_id=viewer.staff_id if viewer else None)
    settlement.journal_entry_id = entry.id
    for loan in loans:
        loan.status = "repaid"
        loan.settlement_id = settlement.id
    moved = session.execute(update(Agreement).where(Agreement.id == agreement.id, Agreement.status == "disbursed")
                            .values(status="settled").execution_options(synchronize_session=False)).rowcount
    if moved != 1:
        raise StateConflict("签单状态已变化，请刷新后重试")
    session.flush()
    session.refresh(agreement)
    if fee_revenue > 0:
        hooks.fees_collected(session, hooks.FeeEvent(
            settlement_id=settlement.id, agreement_id=agreement.id, customer_id=agreement.customer_id,
            sales_staff_id=agreement.sales_staff_id, loan_id=settlement.loan_id, funder_type=settlement.funder_type,
            fee_amount=fee_revenue, key=f"settlement:{settlement.id}", at=clock.now()))
    audit.record(session, "finance.settled", entity_type="finance_settlement", entity_id=settlement.id,
                 after={"entry": entry.id, "fee_revenue": fee_revenue})
    return settlement


def fee_revenue_of(settlement: Settlement) -> int:
    return settlement.total_due_amount + settlement.deposit_applied_amount - settlement.loan_repaid_amount


def refund_fee(session: Session, settlement_id: int, *, amount: int, method: str, reason: str,
               viewer: Viewer | None) -> Settlement:
    """A fee paid back after 结单 (Dr 服务费收入 / Cr cash/bank): never more than was kept; the staff
    commission on it is reversed (finance.hooks.ON_FEES_REFUNDED)."""
    require(viewer, FINANCE, "退服务费")
    settlement = get_settlement(session, viewer, settlement_id)
    amount = fen(amount, "退费金额", "amount")
    if method not in METHOD_LABELS:
        raise FinanceInvalid(f"退款方式不正确：{method}", field="method")
    if not (reason or "").strip():
        raise FinanceInvalid("请填写退费原因", field="reason")
    if settlement.status != "settled":
        raise StateConflict("只有已结算的案件可以退服务费")
    revenue = fee_revenue_of(settlement)
    moved = session.execute(update(Settlement).where(
        Settlement.id == settlement.id, Settlement.status == "settled",
        Settlement.fee_refunded_amount + amount <= revenue,
    ).values(fee_refunded_amount=Settlement.fee_refunded_amount + amount)
        .execution_options(synchronize_session=False)).rowcount
    session.refresh(settlement)
    if moved != 1:
        left = revenue - settlement.fee_refunded_amount
        raise FinanceInvalid(f"退费金额 {format_yuan(amount)} 超过可退的服务费收入 {format_yuan(max(left, 0))}",
                             field="amount")
    agreement = session.get(Agreement, settlement.agreement_id)
    number = session.scalar(select(func.count()).select_from(audit.AuditLog).where(
        audit.AuditLog.action == "finance.fee_refunded", audit.AuditLog.entity_id == str(settlement.id))) or 0
    key = f"settlement:{settlement.id}:refund:{number + 1}"
    ledger.post(session, source_type="fee_refund", source_id=settlement.id, source_key=key,
                memo=f"退服务费 {agreement.number}：{reason.strip()[:60]}",
                by_staff_id=viewer.staff_id if viewer else None,
                lines=[ledger.Line("fee_revenue", debit=amount), ledger.Line(ledger.method_account(method), credit=amount)])
    hooks.fees_refunded(session, hooks.FeeEvent(
        settlement_id=settlement.id, agreement_id=agreement.id, customer_id=agreement.customer_id,
        sales_staff_id=agreement.sales_staff_id, loan_id=settlement.loan_id, funder_type=settlement.funder_type,
        fee_amount=revenue - settlement.fee_refunded_amount, key=key, at=clock.now(), refunded_amount=amount))
    audit.record(session, "finance.fee_refunded", entity_type="finance_settlement", entity_id=settlement.id,
                 after={"amount": amount, "method": method}, detail=reason.strip()[:200])
    return settlement


# --- reading ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettlementRow:
    settlement: Settlement
    agreement: Agreement
    customer: Customer


def listing_query(viewer: Viewer, *, status: str | None, funder_type: str | None, since: date | None,
             until: date | None) -> Select[Any]:
    """The settlement list's SELECT (scope and filters; analytics' finance figures aggregate it)."""
    stmt = (select(Settlement, Agreement, Customer).join(Agreement, Agreement.id == Settlement.agreement_id)
            .join(Customer, Customer.id == Agreement.customer_id).where(case_filter(viewer)))
    if status:
        stmt = stmt.where(Settlement.status == status)
    if funder_type:
        stmt = stmt.where(Settlement.funder_type == funder_type)
    if since:
        stmt = stmt.where(Settlement.disbursed_date >= since)
    if until:
        stmt = stmt.where(Settlement.disbursed_date <= until)
    return stmt


def list_settlements(session: Session, viewer: Viewer, *, status: str | None = None, funder_type: str | None = None,
                     since: date | None = None, until: date | None = None, limit: int = 50,
                     offset: int = 0) -> list[SettlementRow]:
    stmt = listing_query(viewer, status=status, funder_type=funder_type, since=since, until=until)
    return [SettlementRow(*r) for r in session.execute(stmt.order_by(Settlement.id.desc()).limit(limit)
                                                        .offset(offset))]


def iter_settlements(session: Session, viewer: Viewer, *, status: str | None = None, funder_type: str | None = None,
                     since: date | None = None, until: date | None = None):  # noqa: ANN201 - a generator
    """Every matching settlement, streamed in id order (for the export)."""
    stmt = listing_query(viewer, status=status, funder_type=funder_type, since=since, until=until)
    for row in session.execute(stmt.order_by(Settlement.id).execution_options(yield_per=2000)):
        yield SettlementRow(*row)


def details(session: Session, settlement_id: int) -> dict[str, list[Any]]:
    fees = list(session.execute(select(SettlementFee, FeeType).join(FeeType, FeeType.id == SettlementFee.fee_type_id)
                                .where(SettlementFee.settlement_id == settlement_id).order_by(SettlementFee.id)))
    payments = list(session.scalars(select(SettlementPayment).where(SettlementPayment.settlement_id == settlement_id)
                                    .order_by(SettlementPayment.id)))
    rebates = list(session.scalars(select(SettlementRebate).where(SettlementRebate.settlement_id == settlement_id)
                                   .order_by(SettlementRebate.id)))
    return {"fees": fees, "payments": payments, "rebates": rebates}


def fee_types(session: Session, *, active_only: bool = True) -> list[FeeType]:
    stmt = select(FeeType).order_by(FeeType.id)
    if active_only:
        stmt = stmt.where(FeeType.active.is_(True))
    return list(session.scalars(stmt))


def add_fee_type(session: Session, name: str, *, viewer: Viewer | None) -> FeeType:
    require(viewer, FINANCE, "配置费用类型")
    label = (name or "").strip()
    if not label or len(label) > 40:
        raise FinanceInvalid("请填写费用名称（最多 40 字）", field="name")
    if session.scalar(select(FeeType.id).where(FeeType.name == label)) is not None:
        raise StateConflict(f"费用类型「{label}」已存在")
    count = session.scalar(select(func.count()).select_from(FeeType)) or 0
    fee_type = FeeType(code=f"custom_{count + 1}", name=label, active=True)
    session.add(fee_type)
    session.flush()
    audit.record(session, "finance.fee_type_added", entity_type="finance_fee_type", entity_id=fee_type.id,
                 after={"name": label})
    return fee_type
