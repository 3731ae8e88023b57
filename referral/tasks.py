"""Referral tasks and the hooks into lending and crm.

``lending.loan_disbursed`` has one body (lending's); referral joins its unit of work through the
in-process hook list ``lending.disbursement.ON_LOAN_DISBURSED`` (registered when this module is
imported, which ``core.plugins.load_tasks`` does in every web process and worker, and ``referral.cli``
in every ``scrm`` command), so the commission accrues in the same transaction that records the
disbursement, or not at all. The event bounties join the same way: ``referral.bounties`` handlers on
``lending.applications.ON_APPLICATION_STARTED`` (first application) and ``crm.visits.ON_VISIT_ARRIVED``
(first arrived visit).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session

from core.db import unit_of_work
from core.tasks import periodic, task
from referral import ledger

log = logging.getLogger(__name__)


@task("referral.confirm_commissions")
def confirm_commissions() -> int:
    """Confirm accruals whose clawback window has ended (set-based, idempotent)."""
    with unit_of_work() as session:
        return ledger.confirm_due(session)


periodic("referral.confirm_commissions", timedelta(hours=1))


def disbursement_of(session: Session, loan_id: int) -> ledger.Disbursement | None:
    """Adapt lending's Loan into what the ledger needs (None when there is no such loan).

    Product and funder type come from the loan's contract; the service fee counted as collected at
    disbursement is the contract's upfront fee (前置服务费, deducted from the money paid out).
    Per-period fees are collected with repayments, which have no hook yet.
    """
    from lending.models import Contract, Funder, Loan, ProductVersion
    from lending.models import Disbursement as LendingDisbursement

    loan = session.get(Loan, loan_id)
    if loan is None:
        return None
    contract = session.get(Contract, loan.contract_id)
    version = session.get(ProductVersion, contract.product_version_id) if contract else None
    funder = session.get(Funder, contract.funder_id) if contract else None
    paid_out = session.get(LendingDisbursement, loan.disbursement_id)
    quote = ((contract.snapshot or {}).get("quote") or {}) if contract else {}
    return ledger.Disbursement(
        loan_id=loan.id, customer_id=loan.customer_id, product_id=version.product_id if version else None,
        funder_type=funder.funder_type if funder else None, principal_fen=int(loan.principal_amount),
        service_fee_fen=int(quote.get("upfront_fee") or 0),
        disbursed_at=paid_out.created_at if paid_out else loan.created_at,
    )


def on_loan_disbursed(session: Session, loan_id: int) -> None:
    """Runs inside lending's ``lending.loan_disbursed`` unit of work."""
    loan = disbursement_of(session, loan_id)
    if loan is None:
        log.warning("referral: loan %s not found for commission accrual", loan_id)
        return
    ledger.accrue_for_disbursement(
        session, loan_id=loan.loan_id, customer_id=loan.customer_id, product_id=loan.product_id,
        funder_type=loan.funder_type, principal_fen=loan.principal_fen, service_fee_fen=loan.service_fee_fen,
        disbursed_at=loan.disbursed_at)


def on_finance_fees_collected(session: Session, event) -> None:  # noqa: ANN001 - finance.hooks.FeeEvent
    """Staff commission schemes accrue (and confirm) on the fees finance actually collected at 结单."""
    ledger.record_service_fee_collected(
        session, loan_id=event.loan_id, customer_id=event.customer_id, product_id=None,
        funder_type=event.funder_type, fee_fen=event.fee_amount, collected_at=event.at,
        collection_key=f"finance:{event.key}")


def on_finance_fees_refunded(session: Session, event) -> None:  # noqa: ANN001 - finance.hooks.FeeEvent
    """A fee refunded after 结单: every accrual on the settlement's fees is reversed, and what the
    facilitator keeps (``event.fee_amount``) accrues again under the refund's own key."""
    ledger.reverse_for_collection(session, f"finance:settlement:{event.settlement_id}:", "服务费退款，佣金冲回")
    if event.fee_amount > 0:
        ledger.record_service_fee_collected(
            session, loan_id=event.loan_id, customer_id=event.customer_id, product_id=None,
            funder_type=event.funder_type, fee_fen=event.fee_amount, collected_at=event.at,
            collection_key=f"finance:{event.key}")


def register_finance_hooks() -> None:
    from finance import hooks

    if on_finance_fees_collected not in hooks.ON_FEES_COLLECTED:
        hooks.ON_FEES_COLLECTED.append(on_finance_fees_collected)
    if on_finance_fees_refunded not in hooks.ON_FEES_REFUNDED:
        hooks.ON_FEES_REFUNDED.append(on_finance_fees_refunded)


def register_bounty_hooks() -> None:
    """Join the first-application (lending) and visit (crm) hook lists, once."""
    from crm import visits
    from lending import applications
    from referral import bounties

    for hooks, fn in ((applications.ON_APPLICATION_STARTED, bounties.on_application_started),
                      (visits.ON_VISIT_ARRIVED, bounties.on_visit_arrived)):
        if fn not in hooks:
            hooks.append(fn)


def register_hooks() -> bool:
    """Join lending's, crm's and finance's hook lists (idempotent). Lending has no hook for a reversed or
    refunded loan yet: commissions on such a loan are reversed by hand (``referral.ledger.reverse_for_loan``)."""
    from lending import disbursement

    register_bounty_hooks()
    register_finance_hooks()
    if on_loan_disbursed not in disbursement.ON_LOAN_DISBURSED:
        disbursement.ON_LOAN_DISBURSED.append(on_loan_disbursed)
    return True

register_hooks()
