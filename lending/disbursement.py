"""Disbursement (放款): record the money out, activate the loan with its schedule, tell the rest.

Exactly once, decided by the database: the contract moves ``signed`` → ``disbursed`` by a conditional
UPDATE (two finance clicks at once: one wins, the other is refused), and unique constraints on the
disbursement's contract and funder reference and on the loan's contract stand behind it.

The loan's schedule is copied from the contract lines (frozen at signing), never recomputed.
After commit the task ``lending.loan_disbursed`` (args: ``loan_id``) runs: it records the servicing start
and calls every function in :data:`ON_LOAN_DISBURSED` inside its unit of work. Downstream packages
(referral: commission accrual) hook in with ``ON_LOAN_DISBURSED.append(fn)`` where ``fn(session, loan_id)``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock, outbox
from core.errors import PermissionDenied
from core.money import format_yuan
from crm import customers
from crm.models import Role
from crm.permissions import permission
from crm.scope import Viewer
from lending import applications, contracts
from lending.application_exceptions import (
    AlreadyDisbursed,
    ContractIncomplete,
    ContractNotFound,
    ContractNotSigned,
    DisbursementInvalid,
    FunderReferenceTaken,
    LoanNotFound,
)
from lending.models import Contract, ContractLine, Disbursement, Loan, LoanInstallment

__all__ = ["DISBURSERS", "LOAN_DISBURSED_TASK", "ON_LOAN_DISBURSED", "disburse", "loan_for", "record_servicing_start"]

LOAN_DISBURSED_TASK = "lending.loan_disbursed"
DISBURSERS = permission("lending.disburse", "放款", "确认放款", {Role.FINANCE, Role.MANAGER, Role.ADMIN}, group="贷款")

# In-process hooks run by the task lending.loan_disbursed inside its unit of work, once per loan
# (on the run that records the servicing start). Signature: fn(session, loan_id) -> None.
ON_LOAN_DISBURSED: list[Callable[[Session, int], None]] = []


def loan_for(session: Session, application_id: int) -> Loan | None:
    return session.scalar(select(Loan).where(Loan.application_id == application_id))


def installments(session: Session, loan_id: int) -> list[LoanInstallment]:
    return list(session.scalars(select(LoanInstallment).where(LoanInstallment.loan_id == loan_id)
                                .order_by(LoanInstallment.number)))


def disburse(session: Session, application_id: int, *, viewer: Viewer | None, funder_reference: str,
             disbursement_date: date | None = None, amount: int | None = None) -> Loan:
    """Record the disbursement of a signed contract (amount = the contract principal) and start the loan."""
    if viewer is not None and viewer.role not in DISBURSERS:
        raise PermissionDenied("只有财务、经理或管理员可以登记放款")
    reference = (funder_reference or "").strip()
    if not reference or len(reference) > 64:
        raise DisbursementInvalid("请填写资方放款流水号（最多 64 位）", field="funder_reference")
    day = disbursement_date or clock.today()
    if day > clock.today():
        raise DisbursementInvalid("放款日期不能晚于今天", field="disbursement_date")
    app = applications.get_application(session, viewer, application_id, for_update=True)
    contract = contracts.contract_for(session, app.id)
    if contract is None:
        raise ContractNotFound("该申请还没有合同")
    if amount is not None and amount != contract.principal_amount:
        raise DisbursementInvalid(f"放款金额须等于合同本金 {format_yuan(contract.principal_amount)}", field="amount")
    moved = session.execute(
        update(Contract).where(Contract.id == contract.id, Contract.status == "signed").values(status="disbursed")
        .execution_options(synchronize_session=False)).rowcount
    if moved != 1:
        session.refresh(contract)
        if contract.status == "disbursed":
            raise AlreadyDisbursed(f"合同 {contract.number} 已放款，不能重复放款")
        raise ContractNotSigned(f"合同 {contract.number} 尚未签署，不能放款")
    session.refresh(contract)
    if contract.start_date is None:  # signing sets it; an explicit check, not an assert (gone under python -O)
        raise ContractIncomplete(f"合同 {contract.number} 没有起息日，不能放款，请联系系统管理员")
    if day < contract.start_date:
        raise DisbursementInvalid("放款日期不能早于合同签署日", field="disbursement_date")
    now = clock.now()
    staff_id = viewer.staff_id if viewer else None
    try:
        with session.begin_nested():
            disbursement = Disbursement(contract_id=contract.id, amount=contract.principal_amount,
                                        disbursement_date=day, funder_reference=reference, by_staff_id=staff_id,
                                        created_at=now)
            session.add(disbursement)
            session.flush()
    except IntegrityError:
        raise FunderReferenceTaken(f"资方放款流水号已被使用：{reference}", field="funder_reference") from None
    loan = Loan(contract_id=contract.id, application_id=app.id, customer_id=app.customer_id,
                disbursement_id=disbursement.id, principal_amount=contract.principal_amount, status="active",
                start_date=contract.start_date, created_at=now)
    session.add(loan)
    session.flush()
    session.execute(insert(LoanInstallment).from_select(
        ["loan_id", "number", "due_date", "principal_amount", "interest_amount", "fee_amount",
         "paid_principal_amount", "paid_interest_amount", "paid_fee_amount", "status"],
        select(literal(loan.id), ContractLine.number, ContractLine.due_date, ContractLine.principal_amount,
               ContractLine.interest_amount, ContractLine.fee_amount, literal(0), literal(0), literal(0),
               literal("pending"))
        .where(ContractLine.contract_id == contract.id)))
    session.flush()
    audit.record(session, "lending.disbursement", entity_type="lending_contract", entity_id=contract.id,
                 after={"loan_id": loan.id, "amount": contract.principal_amount, "funder_reference": reference,
                        "disbursement_date": day.isoformat()})
    customers.record_event(session, app.customer_id, "lending_disbursement",
                           f"合同 {contract.number} 已放款 {format_yuan(contract.principal_amount)}",
                           actor_staff_id=staff_id, ref_type="lending_loan", ref_id=loan.id)
    applications.complete_node(session, app, viewer=viewer, comment=f"放款 {format_yuan(contract.principal_amount)}，"
                                                                      f"资方流水号 {reference}")
    outbox.enqueue(session, LOAN_DISBURSED_TASK, loan.id)
    return loan


def record_servicing_start(session: Session, loan_id: int) -> bool:
    """Mark the loan's servicing start (once): timeline, stage 还款中, hooks. False when already recorded."""
    now = clock.now()
    first = session.execute(update(Loan).where(Loan.id == loan_id, Loan.servicing_started_at.is_(None))
                            .values(servicing_started_at=now).execution_options(synchronize_session=False)).rowcount
    if first != 1:
        return False
    loan = session.get(Loan, loan_id)
    if loan is None:
        raise LoanNotFound(f"贷款 #{loan_id} 不存在")
    session.refresh(loan)
    customers.record_event(session, loan.customer_id, "lending_servicing",
                           f"贷款 #{loan.id} 进入贷后，共 {len(installments(session, loan.id))} 期，"
                           f"本金 {format_yuan(loan.principal_amount)}", ref_type="lending_loan", ref_id=loan.id)
    customers.set_stage(session, loan.customer_id, "repaying")
    audit.record(session, "lending.loan.servicing_start", entity_type="lending_loan", entity_id=loan.id,
                 actor=audit.Actor.system(LOAN_DISBURSED_TASK))
    for hook in list(ON_LOAN_DISBURSED):
        hook(session, loan.id)
    return True
