"""Contracts (合同): drafted when an application reaches the signing node, signed once, frozen for ever.

Signing is a conditional ``UPDATE … SET status = 'signed' WHERE status = 'draft'``: a second signature
(or two clicks at once) finds no draft and is refused. In the same transaction the product version's
terms, fees and the full schedule (费息落地) are computed by the schedule engine through
``lending.products.quote`` and written into the contract: a JSON snapshot plus one ``ContractLine`` per
period (principal / interest / fee in fen). Nothing reads the product again for this contract: a later
edit of the product (a new version) or anything else leaves it unchanged.

Numbers are ``HT<yyyymmdd>-<nnnnnn>`` from a per-day counter the database increments atomically.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from core import audit, clock, pii
from crm import customers
from crm.models import Customer
from crm.scope import Viewer
from lending import applications, products
from lending.application_exceptions import (
    ContractAlreadySigned,
    ContractIncomplete,
    ContractNotFound,
    TransitionRefused,
)
from lending.models import Application, Contract, ContractLine, Funder, NodeKind, NumberSequence, Product, WorkflowNode

__all__ = ["contract_for", "draft_contract", "get_contract", "lines", "mask_name", "next_number", "sign_contract"]

PREFIX = "HT"


def next_number(session: Session, prefix: str, day: date) -> int:
    """The next value of the (prefix, day) counter; concurrent callers get distinct values."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    table = NumberSequence.__table__
    stmt = upsert(table).values(prefix=prefix, day=day, last_value=1)
    stmt = stmt.on_conflict_do_update(index_elements=["prefix", "day"],
                                      set_={"last_value": table.c.last_value + 1}).returning(table.c.last_value)
    return int(session.execute(stmt).scalar_one())


def mask_name(name: str | None) -> str:
    """张三 -> 张*, 欧阳娜娜 -> 欧***: the family name stays, the rest is hidden."""
    name = (name or "").strip()
    return name[:1] + "*" * max(1, len(name) - 1) if name else "—"


def contract_for(session: Session, application_id: int) -> Contract | None:
    return session.scalar(select(Contract).where(Contract.application_id == application_id))


@dataclass(frozen=True)
class Borrower:
    name: str
    id_number: str | None


def borrower_for_print(session: Session, contract: Contract) -> Borrower:
    """The borrower's full name and ID number for the contract the borrower signs: an audited reveal
    (``pii.reveal`` with the contract's number), as every showing of a full ID number is."""
    customer = session.get(Customer, contract.customer_id)
    if customer is None:
        raise ContractNotFound()
    id_number = None
    if customer.id_number_enc:
        id_number = audit.reveal(session, pii.ID_NUMBER, customer.id_number_enc, entity_type="customer",
                                 entity_id=customer.id, reason=f"打印合同 {contract.number}（供借款人签署）")
    return Borrower(customer.name, id_number)


def get_contract(session: Session, viewer: Viewer | None, contract_id: int) -> Contract:
    contract = session.get(Contract, contract_id)
    if contract is None:
        raise ContractNotFound()
    try:
        applications.get_application(session, viewer, contract.application_id)
    except applications.ApplicationNotFound:
        raise ContractNotFound() from None
    return contract


def lines(session: Session, contract_id: int) -> list[ContractLine]:
    return list(session.scalars(select(ContractLine).where(ContractLine.contract_id == contract_id)
                                .order_by(ContractLine.number)))


def draft_contract(session: Session, app: Application) -> Contract:
    """The draft for an application at the signing node (idempotent): number, parties, principal, term.
    Called by the workflow when an application enters its signing node (:data:`ON_SIGNING_ENTERED`)."""
    existing = contract_for(session, app.id)
    if existing is not None:
        return existing
    customer = session.get(Customer, app.customer_id)
    version = products.get_version(session, app.product_version_id)
    product = session.get(Product, version.product_id)
    funder = session.get(Funder, product.funder_id) if product is not None else None
    # Explicit checks, not asserts (which vanish under python -O and would let a contract lose a party).
    if customer is None:
        raise ContractIncomplete(f"申请 #{app.id} 的客户不存在，不能生成合同")
    if product is None or funder is None:
        raise ContractIncomplete(f"申请 #{app.id} 的产品或资方不存在，不能生成合同")
    today = clock.today()
    number = f"{PREFIX}{today:%Y%m%d}-{next_number(session, PREFIX, today):06d}"
    contract = Contract(
        number=number, application_id=app.id, customer_id=app.customer_id, product_version_id=version.id,
        funder_id=funder.id, status="draft", principal_amount=app.requested_amount, term_months=app.term_months,
        annual_rate=Decimal(version.annual_rate), parties={
            "customer_name": mask_name(customer.name), "customer_id_number_masked": customer.id_number_masked,
            "customer_phone_masked": customer.phone_masked, "funder_name": funder.name,
            "funder_type": funder.funder_type, "product_name": product.name, "product_code": product.code,
            "product_version": version.version,
        }, created_at=clock.now())
    session.add(contract)
    session.flush()
    audit.record(session, "lending.contract.draft", entity_type="lending_contract", entity_id=contract.id,
                 after={"number": number, "application_id": app.id, "principal_amount": app.requested_amount})
    return contract


applications.ON_SIGNING_ENTERED.append(draft_contract)


def jsonable(value: Any) -> Any:
    """Decimals and dates as text, recursively (a snapshot stored as JSON)."""
    if isinstance(value, Decimal | date):
        return str(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def sign_contract(session: Session, application_id: int, *, viewer: Viewer | None,
                  comment: str | None = None) -> Contract:
    """Sign the application's draft contract: freeze terms, fees and schedule; the application moves on."""
    app = applications.get_application(session, viewer, application_id, for_update=True)
    node = session.get(WorkflowNode, app.current_node_id) if app.current_node_id else None
    contract = contract_for(session, app.id)
    if contract is None:
        if node is None or node.kind != NodeKind.SIGNING:
            raise TransitionRefused("申请尚未到签约节点")
        contract = draft_contract(session, app)
    now = clock.now()
    staff_id = viewer.staff_id if viewer else None
    signed = session.execute(
        update(Contract).where(Contract.id == contract.id, Contract.status == "draft")
        .values(status="signed", signed_at=now, signed_by_staff_id=staff_id)
        .execution_options(synchronize_session=False)).rowcount
    if signed != 1:
        raise ContractAlreadySigned(f"合同 {contract.number} 已签署，不能重复签署")
    if node is None or node.kind != NodeKind.SIGNING:
        raise TransitionRefused("申请不在签约节点，不能签署合同")
    version = products.get_version(session, contract.product_version_id)
    start = clock.today()
    q = products.quote(version, contract.principal_amount, contract.term_months, start)
    snapshot = {
        "signed_on": start.isoformat(),
        "product": {"code": contract.parties.get("product_code"), "name": contract.parties.get("product_name"),
                    "version": contract.parties.get("product_version"), "version_id": version.id},
        "terms": jsonable(asdict(products.ProductTerms.of(version))),
        "quote": q.as_dict(),
    }
    maturity = q.schedule.periods[-1].due_date
    session.execute(update(Contract).where(Contract.id == contract.id).values(
        snapshot=snapshot, apr_rate=q.apr.quantize(Decimal("1e-8")), start_date=start, maturity_date=maturity)
        .execution_options(synchronize_session=False))
    session.execute(insert(ContractLine), [
        {"contract_id": contract.id, "number": p.number, "due_date": p.due_date, "principal_amount": p.principal,
         "interest_amount": p.interest, "fee_amount": p.fee, "total_amount": p.total, "balance_amount": p.balance}
        for p in q.schedule.periods])
    session.flush()
    session.refresh(contract)
    audit.record(session, "lending.contract.sign", entity_type="lending_contract", entity_id=contract.id,
                 before={"status": "draft"}, after={"status": "signed", "number": contract.number,
                                                    "apr_rate": str(contract.apr_rate), "periods": len(q.schedule.periods)})
    customers.record_event(session, app.customer_id, "lending_contract",
                           f"合同 {contract.number} 已签署（{contract.term_months} 期，综合年化 {q.apr_percent}%）",
                           actor_staff_id=staff_id, ref_type="lending_contract", ref_id=contract.id)
    applications.complete_node(session, app, viewer=viewer,
                               comment=(comment or "").strip() or f"合同 {contract.number} 已签署")
    return contract
