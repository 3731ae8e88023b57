"""Referral tasks and the hook into lending's disbursement.

``lending.loan_disbursed`` has one body (lending's); referral joins its unit of work through the
in-process hook list ``lending.disbursement.ON_LOAN_DISBURSED`` (registered when this module is
imported, which ``core.plugins.load_tasks`` does in every web process and worker), so the
commission accrues in the same transaction that records the disbursement, or not at all.
"""

from __future__ import annotations

import importlib
import logging
from datetime import timedelta
from typing import Any

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


def _first(obj: Any, *names: str) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def disbursement_of(session: Session, loan_id: int) -> ledger.Disbursement | None:
    """Adapt lending's Loan into what the ledger needs (None when lending has no such loan)."""
    try:
        module = importlib.import_module("lending.disbursement")
    except ImportError:
        return None
    loan_cls = getattr(module, "Loan", None)
    if loan_cls is None:
        try:
            loan_cls = importlib.import_module("lending.models").Loan
        except (ImportError, AttributeError):
            return None
    loan = session.get(loan_cls, loan_id)
    if loan is None:
        return None
    product_id = _first(loan, "product_id")
    version_id = _first(loan, "product_version_id")
    funder_type = _first(loan, "funder_type")
    if product_id is None or funder_type is None:
        from lending.models import Funder, Product, ProductVersion

        if product_id is None and version_id is not None:
            version = session.get(ProductVersion, version_id)
            product_id = getattr(version, "product_id", None)
        product = session.get(Product, product_id) if product_id is not None else None
        funder = session.get(Funder, product.funder_id) if product is not None else None
        funder_type = funder_type or (funder.funder_type if funder else None)
    return ledger.Disbursement(
        loan_id=loan.id, customer_id=_first(loan, "customer_id"), product_id=product_id, funder_type=funder_type,
        principal_fen=int(_first(loan, "principal_amount", "disbursed_amount", "amount") or 0),
        service_fee_fen=int(_first(loan, "service_fee_collected_amount", "service_fee_amount") or 0),
        disbursed_at=_first(loan, "disbursed_at", "created_at"),
    )


def on_loan_disbursed(session: Session, loan_id: int) -> None:
    """Runs inside lending's ``lending.loan_disbursed`` unit of work."""
    loan = disbursement_of(session, loan_id)
    if loan is None or loan.customer_id is None:
        log.warning("referral: loan %s not found for commission accrual", loan_id)
        return
    ledger.accrue_for_disbursement(
        session, loan_id=loan.loan_id, customer_id=loan.customer_id, product_id=loan.product_id,
        funder_type=loan.funder_type, principal_fen=loan.principal_fen, service_fee_fen=loan.service_fee_fen,
        disbursed_at=loan.disbursed_at)


def on_loan_reversed(session: Session, loan_id: int) -> None:
    """For a lending hook on refunds, voids and cancellations (if lending offers one)."""
    ledger.reverse_for_loan(session, loan_id, "贷款撤销/退款，佣金冲回")


def register_hooks() -> bool:
    """Join lending's hook lists where they exist; True when the disbursement hook is in place."""
    try:
        module = importlib.import_module("lending.disbursement")
    except ImportError:
        return False
    hooks = getattr(module, "ON_LOAN_DISBURSED", None)
    if hooks is None:
        return False
    if on_loan_disbursed not in hooks:
        hooks.append(on_loan_disbursed)
    for name in ("ON_LOAN_REVERSED", "ON_LOAN_CANCELLED", "ON_LOAN_REFUNDED"):
        extra = getattr(module, name, None)
        if isinstance(extra, list) and on_loan_reversed not in extra:
            extra.append(on_loan_reversed)
    return True


register_hooks()
