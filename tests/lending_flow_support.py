"""Helpers for the application-workflow tests (no tests here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import clock
from crm.models import Customer, Staff
from crm.scope import Viewer
from lending import applications, contracts
from lending.models import Application, Product, WorkflowNode
from lending.workflow import definitions
from tests.factories import make_customer, make_org, make_staff
from tests.lending_product_factories import make_product

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
AMOUNT = 5_000_000  # 50,000.00 yuan


@dataclass
class World:
    sales: Staff
    other_sales: Staff
    risk: Staff
    finance: Staff
    manager: Staff
    customer: Customer
    product: Product

    @property
    def version_id(self) -> int:
        assert self.product.current_version_id is not None
        return self.product.current_version_id


def V(staff: Staff) -> Viewer:  # noqa: N802 - reads like a type
    return Viewer.of(staff)


def make_world(session: Session, **product_terms: object) -> World:
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"], data_scope="own")
    other = make_staff(session, department=org["team_a"], data_scope="own")
    risk = make_staff(session, role="risk", department=org["company"], data_scope="all")
    finance = make_staff(session, role="finance", department=org["company"], data_scope="all")
    manager = make_staff(session, role="manager", department=org["company"], data_scope="all")
    customer = make_customer(session, owner=sales, name="李四")
    product = make_product(session, **product_terms)
    session.flush()
    return World(sales, other, risk, finance, manager, customer, product)


def start(session: Session, w: World, **kw: object) -> Application:
    kw.setdefault("viewer", V(w.sales))
    return applications.start_application(session, w.customer.id, w.version_id, kw.pop("amount", AMOUNT),
                                          kw.pop("term", 12), **kw)


def node(session: Session, app: Application) -> WorkflowNode:
    n = session.get(WorkflowNode, app.current_node_id)
    assert n is not None
    return n


def satisfy(session: Session, app: Application, viewer: Viewer) -> None:
    """Fill the current node's required fields and documents."""
    n = node(session, app)
    if n.required_fields:
        applications.set_fields(session, app.id, {f: "12000" for f in n.required_fields}, viewer=viewer)
    for d in n.required_documents or []:
        applications.add_document(session, app.id, d, viewer=viewer)


def advance_to(session: Session, w: World, app: Application, code: str) -> Application:
    """Drive the application (as the manager; risk and then the manager pass the review nodes, one person
    never passing two of them) until it sits at node ``code``."""
    mgr = V(w.manager)
    reviewers = [mgr, V(w.risk)]
    while node(session, app).code != code:
        n = node(session, app)
        satisfy(session, app, mgr)
        if n.kind == "signing":
            contracts.sign_contract(session, app.id, viewer=mgr)
        elif n.kind == "disbursement":
            from lending import disbursement

            disbursement.disburse(session, app.id, viewer=V(w.finance), funder_reference=f"FR-{app.id}")
        elif n.kind == "review":
            applications.approve(session, app.id, viewer=reviewers.pop(), comment="通过")
        else:
            applications.approve(session, app.id, viewer=mgr, comment="通过")
        session.refresh(app)
    return app


def count(session: Session, model: object, *where: object) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


def default_codes() -> list[str]:
    return [s.code for s in definitions.DEFAULT_NODES]


def freeze() -> None:
    clock.freeze(NOW)
