"""Contracts with their fee snapshot, disbursement exactly once, the loan and the loan_disbursed task."""

from __future__ import annotations

import re
import threading
from decimal import Decimal

import pytest
from sqlalchemy import select

from core import clock
from core.db import unit_of_work
from core.errors import PermissionDenied
from crm.models import CustomerEvent
from lending import applications, contracts, disbursement, products
from lending.application_exceptions import (
    AlreadyDisbursed,
    ApplicationAlreadyOpen,
    ContractAlreadySigned,
    DisbursementInvalid,
    FunderReferenceTaken,
    TransitionRefused,
)
from lending.models import Application, Contract, ContractLine, Disbursement, Loan, LoanInstallment
from tests.lending_flow_support import AMOUNT, V, advance_to, count, make_world, node, start
from tests.lending_product_factories import terms


def _signed(session, w, **kw):
    app = advance_to(session, w, start(session, w, **kw), "disbursement")
    return app, contracts.contract_for(session, app.id)


def test_reaching_signing_drafts_a_numbered_contract_with_masked_parties(session):
    w = make_world(session)
    app = advance_to(session, w, start(session, w), "signing")
    c = contracts.contract_for(session, app.id)
    assert c.status == "draft" and re.fullmatch(rf"HT{clock.today():%Y%m%d}-\d{{6}}", c.number)
    assert c.parties["customer_name"] == "李*" and c.parties["funder_name"] == w.product.funder.name
    assert c.snapshot is None and count(session, ContractLine, ContractLine.contract_id == c.id) == 0


def test_contract_numbers_come_from_a_database_sequence(session):
    day = clock.today()
    first = contracts.next_number(session, "HT", day)
    assert contracts.next_number(session, "HT", day) == first + 1


def test_signing_freezes_terms_fees_and_the_schedule(session):
    w = make_world(session, service_fee_rate=Decimal("0.001"))
    app, c = _signed(session, w)
    assert c.status == "signed" and app.status == "signed" and node(session, app).code == "disbursement"
    lines = contracts.lines(session, c.id)
    assert len(lines) == 12 and sum(ln.principal_amount for ln in lines) == AMOUNT
    assert all(ln.fee_amount == 5000 for ln in lines)  # 0.1 % of 50,000 yuan a month
    assert c.snapshot["quote"]["totals"]["principal"] == AMOUNT
    assert Decimal(c.snapshot["terms"]["annual_rate"]) == Decimal("0.12") and c.apr_rate > Decimal("0.12")
    assert c.maturity_date == lines[-1].due_date


def test_the_contract_is_immune_to_product_edits(session):
    w = make_world(session)
    app, c = _signed(session, w)
    before_lines = [(ln.due_date, ln.principal_amount, ln.interest_amount, ln.fee_amount)
                    for ln in contracts.lines(session, c.id)]
    before_snapshot = dict(c.snapshot)
    products.edit_product(session, w.product.id, terms(annual_rate=Decimal("0.18"), service_fee_amount=1000))
    session.expire_all()
    c = session.get(Contract, c.id)
    assert c.snapshot == before_snapshot and c.annual_rate == Decimal("0.12")
    assert [(ln.due_date, ln.principal_amount, ln.interest_amount, ln.fee_amount)
            for ln in contracts.lines(session, c.id)] == before_lines


def test_contract_lines_refuse_changes(session):
    w = make_world(session)
    _, c = _signed(session, w)
    line = contracts.lines(session, c.id)[0]
    line.interest_amount += 1
    with pytest.raises(RuntimeError, match="frozen"):
        session.flush()


def test_a_second_signature_is_refused(session):
    w = make_world(session)
    app, c = _signed(session, w)
    with pytest.raises(ContractAlreadySigned, match="已签署"):
        contracts.sign_contract(session, app.id, viewer=V(w.manager))
    assert count(session, ContractLine, ContractLine.contract_id == c.id) == 12


def test_approve_cannot_bypass_signing_or_disbursement(session):
    w = make_world(session)
    app = advance_to(session, w, start(session, w), "signing")
    with pytest.raises(TransitionRefused, match="签署合同"):
        applications.approve(session, app.id, viewer=V(w.manager))
    contracts.sign_contract(session, app.id, viewer=V(w.sales))
    with pytest.raises(TransitionRefused, match="登记放款"):
        applications.approve(session, app.id, viewer=V(w.manager))


def test_disbursement_activates_the_loan_with_the_contract_schedule(session):
    w = make_world(session)
    app, c = _signed(session, w)
    loan = disbursement.disburse(session, app.id, viewer=V(w.finance), funder_reference="BANK-0001")
    assert (loan.status, loan.principal_amount, loan.start_date) == ("active", AMOUNT, c.start_date)
    rows = disbursement.installments(session, loan.id)
    lines = contracts.lines(session, c.id)
    assert [(r.number, r.due_date, r.principal_amount, r.interest_amount, r.fee_amount) for r in rows] == \
        [(ln.number, ln.due_date, ln.principal_amount, ln.interest_amount, ln.fee_amount) for ln in lines]
    assert all(r.status == "pending" and r.paid_principal_amount == 0 for r in rows)
    assert app.status == "disbursed" and node(session, app).code == "servicing"
    assert session.get(Contract, c.id).status == "disbursed"


def test_disbursement_is_refused_twice_and_for_a_wrong_amount(session):
    w = make_world(session)
    app, _ = _signed(session, w)
    with pytest.raises(DisbursementInvalid, match="合同本金"):
        disbursement.disburse(session, app.id, viewer=V(w.finance), funder_reference="R1", amount=AMOUNT - 1)
    disbursement.disburse(session, app.id, viewer=V(w.finance), funder_reference="R1")
    with pytest.raises(AlreadyDisbursed):
        disbursement.disburse(session, app.id, viewer=V(w.finance), funder_reference="R2")
    assert count(session, Loan) == 1 and count(session, Disbursement) == 1


def test_a_funder_reference_is_used_once(session):
    w = make_world(session)
    app, _ = _signed(session, w)
    disbursement.disburse(session, app.id, viewer=V(w.finance), funder_reference="SAME")
    from tests.lending_product_factories import make_product

    w.product = make_product(session)
    app2, _ = _signed(session, w)
    with pytest.raises(FunderReferenceTaken):
        with session.begin_nested():
            disbursement.disburse(session, app2.id, viewer=V(w.finance), funder_reference="SAME")


def test_only_finance_managers_and_admins_disburse(session):
    w = make_world(session)
    app, _ = _signed(session, w)
    with pytest.raises(PermissionDenied):
        disbursement.disburse(session, app.id, viewer=V(w.sales), funder_reference="R1")


def test_loan_disbursed_is_enqueued_and_its_task_records_the_servicing_start_once(session, task_runner):
    w = make_world(session)
    app, _ = _signed(session, w)
    seen: list[int] = []
    disbursement.ON_LOAN_DISBURSED.append(lambda s, loan_id: seen.append(loan_id))
    try:
        loan = disbursement.disburse(session, app.id, viewer=V(w.finance), funder_reference="R9")
        session.commit()
        assert ("lending.loan_disbursed", (loan.id,), {}) in task_runner.sent
        assert task_runner.drain().count("lending.loan_disbursed") == 1
        from core.tasks import run_task

        assert run_task("lending.loan_disbursed", (loan.id,), {}) is False  # a re-run changes nothing
    finally:
        disbursement.ON_LOAN_DISBURSED.pop()
    session.expire_all()
    assert seen == [loan.id]
    assert session.get(Loan, loan.id).servicing_started_at is not None
    assert count(session, CustomerEvent, CustomerEvent.kind == "lending_servicing") == 1


# --- real concurrency (SQLite file and PostgreSQL) --------------------------------------------------


def _race(n, fn):
    barrier = threading.Barrier(n)
    outcomes: list[object] = [None] * n

    def run(i):
        barrier.wait()
        try:
            with unit_of_work() as s:
                fn(s, i)
            outcomes[i] = "won"
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def test_two_concurrent_starts_create_one_application(committed):
    with unit_of_work() as s:
        w = make_world(s)
        customer_id, version_id, sales = w.customer.id, w.version_id, V(w.sales)
    outcomes = _race(2, lambda s, i: applications.start_application(s, customer_id, version_id, AMOUNT, 12,
                                                                     viewer=sales))
    assert outcomes.count("won") == 1
    assert isinstance(next(o for o in outcomes if o != "won"), ApplicationAlreadyOpen)
    with unit_of_work() as s:
        assert count(s, Application) == 1


def test_two_concurrent_disbursement_clicks_disburse_once(committed):
    with unit_of_work() as s:
        w = make_world(s)
        app, _ = _signed(s, w)
        app_id, finance = app.id, V(w.finance)
    outcomes = _race(2, lambda s, i: disbursement.disburse(s, app_id, viewer=finance, funder_reference=f"REF-{i}"))
    assert outcomes.count("won") == 1
    assert isinstance(next(o for o in outcomes if o != "won"), AlreadyDisbursed)
    with unit_of_work() as s:
        assert count(s, Loan) == 1 and count(s, Disbursement) == 1
        loan = s.scalar(select(Loan))
        assert count(s, LoanInstallment, LoanInstallment.loan_id == loan.id) == 12


def test_two_concurrent_signatures_sign_once(committed):
    with unit_of_work() as s:
        w = make_world(s)
        app = advance_to(s, w, start(s, w), "signing")
        app_id, mgr = app.id, V(w.manager)
    outcomes = _race(2, lambda s, i: contracts.sign_contract(s, app_id, viewer=mgr))
    assert outcomes.count("won") == 1
    with unit_of_work() as s:
        c = contracts.contract_for(s, app_id)
        assert c.status == "signed" and count(s, ContractLine, ContractLine.contract_id == c.id) == 12
