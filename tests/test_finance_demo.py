"""finance.demo: `scrm seed-demo` leaves every finance page something to show, through the same services."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from core import clock
from crm import demo as crm_demo
from finance import demo as finance_demo
from finance import ledger
from finance.models import Agreement, DepositRefund, Reimbursement, Settlement
from payments.models import PaymentRefund

NOW = datetime(2026, 12, 6, 1, 30, tzinfo=UTC)


def test_the_demo_seeds_reimbursements_a_failed_online_refund_and_a_fee_refund(session):
    clock.freeze(NOW)
    crm_demo.seed(session)
    lines = finance_demo.seed(session)
    assert any("做单报销" in line for line in lines), lines
    rows = list(session.scalars(select(Reimbursement)))
    kinds = {(r.kind, r.status) for r in rows}
    assert {("case", "paid"), ("case", "confirmed"), ("case", "submitted"), ("case", "voided"),
            ("marketing", "paid"), ("marketing", "submitted")} <= kinds
    settled = {a.id for a in session.scalars(select(Agreement).where(Agreement.status == "settled"))}
    assert any(r.agreement_id in settled and r.category == "下户费" for r in rows)  # on a settled case
    voided = next(r for r in rows if r.status == "voided")
    again = [r for r in rows if r.resubmitted_from_id == voided.id]
    assert len(again) == 1 and again[0].amount == 15_800 and again[0].status == "submitted"

    failed = session.scalar(select(DepositRefund).where(DepositRefund.status == "failed"))
    assert failed is not None and failed.journal_entry_id is None and failed.out_refund_no
    provider = session.scalar(select(PaymentRefund).where(PaymentRefund.out_refund_no == failed.out_refund_no))
    assert (provider.status, provider.provider_status) == ("failed", "ABNORMAL")

    refunded = session.scalar(select(Settlement).where(Settlement.fee_refunded_amount > 0))
    assert refunded is not None and refunded.status == "settled" and refunded.fee_refunded_amount == 100_000

    assert session.scalar(select(func.count()).select_from(Agreement)) == 14
    check = ledger.run_check(session)
    assert check.ok, check.problems
    assert finance_demo.seed(session) == []  # once per database
