"""Event bounties (固定奖励): a referrer earns a fixed amount when the customer they brought first applies
(首次进件) and first comes to a branch (上门). The disbursement bounty runs with the other disbursement
accruals (:func:`referral.ledger.accrue_for_disbursement`).

The handlers join upstream units of work through in-process hook lists (registered by
``referral.tasks.register_hooks``): ``lending.applications.ON_APPLICATION_STARTED`` (application id) and
``crm.visits.ON_VISIT_ARRIVED`` (visit id). The bounty accrues in the transaction that creates the
application or marks the visit arrived, or not at all.

Once per customer, whatever the retries or concurrent clicks:
* only the customer's first application ever, and first arrived visit ever, earns; the check runs after
  the beneficiaries' referrer rows are locked, so two events of one customer at once queue and the
  second sees the first (start_application also holds the customer row);
* the ledger key names the customer, not the application or visit —
  ``bounty:first_application:<customer_id>:<rule_version_id>:<level>`` and ``bounty:visit:<customer_id>:…``
  — inserted with ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.models import Visit, VisitStatus
from referral import attribution, ledger, referrers, rules
from referral.models import Basis, BeneficiaryKind, BountyEvent

__all__ = ["on_application_started", "on_visit_arrived"]


def _chain_if_payable(session: Session, customer_id: int, event: str, product_id: int | None,
                      funder_type: str | None) -> bool:
    """True when the customer has beneficiaries and a bounty rule applies; their referrer rows are then locked
    (in id order, as every ledger write does). Nothing is locked for a customer nobody referred."""
    chain = attribution.beneficiaries(session, customer_id)
    if not chain:
        return False
    if not rules.matching_versions(session, beneficiary_kind=BeneficiaryKind.REFERRER, basis=Basis.BOUNTY,
                                   product_id=product_id, funder_type=funder_type,
                                   referrer_kind=chain[0][1].kind, bounty_event=event):
        return False
    for referrer_id in sorted({r.id for _, r in chain}):
        referrers.lock_referrer(session, referrer_id)
    return True


def on_application_started(session: Session, application_id: int) -> list[int]:
    """Runs inside start_application's unit of work: the first-application bounty, if this is the
    customer's first application ever. Ids of the ledger entries written."""
    from lending.models import Application, Funder, Product

    app = session.get(Application, application_id)
    if app is None:
        return []
    funder_type = session.scalar(select(Funder.funder_type).join(Product, Product.funder_id == Funder.id)
                                 .where(Product.id == app.product_id))
    if not _chain_if_payable(session, app.customer_id, BountyEvent.FIRST_APPLICATION, app.product_id, funder_type):
        return []
    earlier = session.scalar(select(Application.id).where(Application.customer_id == app.customer_id,
                                                          Application.id != app.id).limit(1))
    if earlier is not None:
        return []
    return ledger.accrue_bounty(session, event=BountyEvent.FIRST_APPLICATION, customer_id=app.customer_id,
                                event_key=str(app.customer_id), at=app.created_at, product_id=app.product_id,
                                funder_type=funder_type)


def on_visit_arrived(session: Session, visit_id: int) -> list[int]:
    """Runs inside mark_arrived's unit of work: the visit bounty, if this is the customer's first arrived
    visit. Ids of the ledger entries written."""
    visit = session.get(Visit, visit_id)
    if visit is None or visit.status != VisitStatus.ARRIVED:
        return []
    if not _chain_if_payable(session, visit.customer_id, BountyEvent.VISIT, None, None):
        return []
    earlier = session.scalar(select(Visit.id).where(Visit.customer_id == visit.customer_id,
                                                    Visit.status == VisitStatus.ARRIVED, Visit.id != visit.id)
                             .limit(1))
    if earlier is not None:
        return []
    return ledger.accrue_bounty(session, event=BountyEvent.VISIT, customer_id=visit.customer_id,
                                event_key=str(visit.customer_id), at=visit.arrived_at or visit.updated_at)
