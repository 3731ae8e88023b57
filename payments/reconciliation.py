"""Reconciliation (对账): the provider's daily trade bill matched against our orders.

:func:`run` downloads the bill of a business date (Asia/Shanghai), and for each out_trade_no compares:

- in the bill, not among our paid orders → ``missing_ours`` (we never recorded the payment: query it), or
  ``status_differs`` when we have the order but not as paid (a lost notification: query it);
- among our paid orders of the day, not in the bill → ``missing_provider`` (query the provider; escalate);
- both, amounts differ → ``amount_differs``;
- both, amounts equal, but the bill says the trade was refunded (``REFUND``) while we hold it as paid with no
  refund of the whole amount recorded → ``status_differs`` (money went back outside the product: look at it).

Matched orders become ``reconciled`` (set-based, one statement per chunk, each transition recorded).
Mismatches are listed as items for finance with their actions (:func:`resolve`: query the provider and
record what it says, or accept with a note); :func:`actions_for` gives the actions an item allows (a bill
line we hold no order for cannot be queried by order: it is verified and accepted with a note, the
suggested action). Running a date again supersedes its open items.
"""

from __future__ import annotations

from datetime import date
from itertools import islice

from sqlalchemy import BigInteger, String, and_, func, insert, literal, null, select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import UTCDateTime
from core.errors import AppError, NotFound
from payments import config, orders
from payments.exceptions import OrderStateConflict, PaymentInvalid
from payments.models import PaymentOrder, PaymentRefund, PaymentTransition, ReconciliationItem, ReconciliationRun
from payments.provider import BillLine

ACTIONS = {"poll": "向渠道查询并更新订单", "accept": "核实无误，标记已处理"}
SUGGESTED = {"missing_ours": "accept", "status_differs": "poll", "missing_provider": "poll", "amount_differs": "accept"}


def actions_for(item: ReconciliationItem) -> dict[str, str]:
    """The actions :func:`resolve` takes for this item: querying needs our order."""
    return {k: v for k, v in ACTIONS.items() if k != "poll" or item.order_id is not None}
CHUNK = 5000


def _chunks(items: list, size: int = CHUNK):  # noqa: ANN202 - a generator of lists
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def run(session: Session, bill_date: date, *, staff_id: int | None) -> ReconciliationRun:
    if bill_date >= clock.today():
        raise PaymentInvalid("只能对账今天之前的日期（账单次日生成）", field="bill_date")
    started = clock.now()
    recon = ReconciliationRun(bill_date=bill_date, status="running", by_staff_id=staff_id, started_at=started)
    session.add(recon)
    session.flush()
    try:
        lines = config.provider().trade_bill(bill_date)
    except (AppError, ValueError) as exc:
        recon.status, recon.finished_at = "failed", clock.now()
        recon.error = (exc.message if isinstance(exc, AppError) else str(exc))[:500]
        session.flush()
        return recon
    match(session, recon, lines)
    return recon


def match(session: Session, recon: ReconciliationRun, lines: list[BillLine]) -> None:
    """Compare ``lines`` with our orders of ``recon.bill_date``; write items and reconcile the matches."""
    bill = {line.out_trade_no: line for line in lines}
    snapshot = clock.now()  # an order that changes after this is not reconciled by this run
    ours = {r.out_trade_no: r for r in session.execute(
        select(PaymentOrder.id, PaymentOrder.out_trade_no, PaymentOrder.status, PaymentOrder.paid_amount)
        .where(PaymentOrder.paid_date == recon.bill_date, PaymentOrder.status.in_(orders.MONEY_IN)))}
    elsewhere: dict[str, object] = {}
    unknown = [no for no in bill if no not in ours]
    for chunk in _chunks(unknown, 1000):
        for r in session.execute(select(PaymentOrder.id, PaymentOrder.out_trade_no, PaymentOrder.status,
                                        PaymentOrder.paid_amount).where(PaymentOrder.out_trade_no.in_(chunk))):
            elsewhere[r.out_trade_no] = r
    items: list[dict] = []
    to_reconcile: list[int] = []
    matched = 0

    def item(kind: str, no: str, row: object | None, line: BillLine | None) -> None:
        items.append({"run_id": recon.id, "kind": kind, "out_trade_no": no[:32],
                      "order_id": getattr(row, "id", None), "our_amount": getattr(row, "paid_amount", None),
                      "bill_amount": line.amount if line else None, "our_status": getattr(row, "status", None),
                      "bill_status": line.trade_state[:16] if line else None, "status": "open",
                      "action": SUGGESTED[kind]})

    refunded_in_bill = [r.id for no, r in ours.items()
                        if no in bill and bill[no].trade_state == "REFUND" and r.status != "refunded"]
    refunded_by_us = _refunded(session, refunded_in_bill)

    for no, line in bill.items():
        row = ours.get(no)
        if row is None:
            other = elsewhere.get(no)
            if other is None:
                item("missing_ours", no, None, line)
            elif other.status in orders.MONEY_IN:  # type: ignore[attr-defined]
                item("amount_differs" if other.paid_amount != line.amount else "status_differs", no, other, line)  # type: ignore[attr-defined]
            else:
                item("status_differs", no, other, line)
            continue
        if row.paid_amount != line.amount:
            item("amount_differs", no, row, line)
            continue
        if (line.trade_state == "REFUND" and row.status != "refunded"
                and refunded_by_us.get(row.id, 0) < (row.paid_amount or 0)):
            item("status_differs", no, row, line)  # refunded at the provider, paid in our books
            continue
        matched += 1
        if row.status == "succeeded":
            to_reconcile.append(row.id)
    for no, row in ours.items():
        if no not in bill:
            item("missing_provider", no, row, None)
    now = clock.now()
    # a date reconciled again: the open items of its earlier runs are superseded by this run's
    earlier = select(ReconciliationRun.id).where(ReconciliationRun.bill_date == recon.bill_date,
                                                 ReconciliationRun.id != recon.id)
    session.execute(update(ReconciliationItem).where(ReconciliationItem.run_id.in_(earlier),
                                                     ReconciliationItem.status == "open")
                    .values(status="resolved", note=f"被第 {recon.id} 次对账取代", resolved_at=now))
    differing = {i["out_trade_no"] for i in items if i["kind"] in ("amount_differs", "status_differs")}
    _reconcile(session, recon, to_reconcile, [no for no in ours if no not in bill or no in differing], snapshot, now)
    for chunk in _chunks(items):
        session.execute(insert(ReconciliationItem), chunk)
    recon.bill_lines, recon.matched, recon.mismatched = len(bill), matched, len(items)
    recon.bill_amount = sum(line.amount for line in bill.values() if line.trade_state in ("SUCCESS", "REFUND"))
    recon.our_amount = sum(r.paid_amount or 0 for r in ours.values())
    recon.status, recon.finished_at = "done", clock.now()
    session.flush()
    audit.record(session, "payments.reconciliation.run", entity_type="reconciliation_run", entity_id=recon.id,
                 after={"bill_date": recon.bill_date.isoformat(), "lines": recon.bill_lines, "matched": matched,
                        "mismatched": len(items)})


def _refunded(session: Session, order_ids: list[int]) -> dict[int, int]:
    """Per order: the refunds we recorded that are under way or done (fen)."""
    out: dict[int, int] = {}
    for chunk in _chunks(order_ids, 1000):
        out.update(session.execute(select(PaymentRefund.order_id, func.sum(PaymentRefund.refund_amount))
                                   .where(PaymentRefund.order_id.in_(chunk),
                                          PaymentRefund.status.in_(("submitted", "succeeded")))
                                   .group_by(PaymentRefund.order_id)).all())
    return out


def _reconcile(session: Session, recon: ReconciliationRun, ids: list[int], excluded: list[str], snapshot: object,
               now: object) -> None:
    """succeeded → reconciled for the matched orders, each transition recorded. Set-based (two statements)
    when the exceptions are few; by id in chunks otherwise."""
    reason = f"对账 {recon.bill_date.isoformat()} 一致"
    if len(excluded) <= 1000:
        cond = and_(PaymentOrder.paid_date == recon.bill_date, PaymentOrder.status == "succeeded",
                    PaymentOrder.updated_at <= snapshot)
        if excluded:
            cond = and_(cond, PaymentOrder.out_trade_no.not_in(excluded))
        staff = literal(recon.by_staff_id, BigInteger()) if recon.by_staff_id is not None else null()
        session.execute(insert(PaymentTransition).from_select(
            ["order_id", "from_status", "to_status", "source", "by_staff_id", "reason", "at"],
            select(PaymentOrder.id, literal("succeeded", String()), literal("reconciled", String()),
                   literal("system", String()), staff, literal(reason, String()),
                   literal(now, UTCDateTime())).where(cond)))
        session.execute(update(PaymentOrder).where(cond).values(status="reconciled", reconciled_at=now, updated_at=now),
                        execution_options={"synchronize_session": False})
        return
    for chunk in _chunks(ids):
        session.execute(update(PaymentOrder).where(PaymentOrder.id.in_(chunk), PaymentOrder.status == "succeeded")
                        .values(status="reconciled", reconciled_at=now, updated_at=now),
                        execution_options={"synchronize_session": False})
        session.execute(insert(PaymentTransition), [
            {"order_id": oid, "from_status": "succeeded", "to_status": "reconciled", "source": "system",
             "by_staff_id": recon.by_staff_id, "reason": reason, "at": now} for oid in chunk])


def resolve(session: Session, item_id: int, *, action: str, note: str, staff_id: int | None) -> ReconciliationItem:
    row = session.scalar(select(ReconciliationItem).where(ReconciliationItem.id == item_id).with_for_update())
    if row is None:
        raise NotFound("对账差异不存在")
    if row.status != "open":
        raise OrderStateConflict("该差异已处理")
    if action not in ACTIONS:
        raise PaymentInvalid("未知的处理方式", field="action")
    note = (note or "").strip()
    if action == "accept" and not note:
        raise PaymentInvalid("请填写核实说明", field="note")
    if action == "poll":
        if row.order_id is None:
            raise OrderStateConflict("我方没有该订单，无法查询；请核实后标记已处理")
        order = orders.get(session, row.order_id)
        if order.status in orders.OPEN:
            orders.poll(session, order.id)
        else:
            result = (config.provider().query_withholding(order.out_trade_no) if order.method == "withholding"
                      else config.provider().query(order.out_trade_no))
            note = note or f"渠道状态：{result.trade_state}"
        note = note or f"已查询，订单状态：{orders._label(order.status)}"
    row.status, row.action, row.note = "resolved", action, note[:300]
    row.resolved_by_staff_id, row.resolved_at = staff_id, clock.now()
    audit.record(session, "payments.reconciliation.resolve", entity_type="reconciliation_item", entity_id=row.id,
                 after={"action": action}, detail=note)
    session.flush()
    return row


def items(session: Session, run_id: int) -> list[ReconciliationItem]:
    return list(session.scalars(select(ReconciliationItem).where(ReconciliationItem.run_id == run_id)
                                .order_by(ReconciliationItem.id)))
