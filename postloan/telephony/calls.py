"""Placing calls: the checks (do-not-call, permitted hours, a number to dial), the call row, the dial task;
the call list and the do-not-call list.

The browser only ever names a customer (or a case): the number is decrypted on the server, in the dial
task, and handed to the provider; the call row keeps the masked number, and each dial placed is audit-logged
(``telephony.dial``).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit, clock, outbox, pii
from core.settings import get_settings
from crm.customers import record_event
from crm.models import Customer, Staff
from postloan.telephony import config, listeners
from postloan.telephony.exceptions import (
    CallSubjectNotFound,
    DoNotCallRefused,
    NoPhoneNumber,
    OutsideCallHours,
)
from postloan.telephony.models import CallStatus, DialBatch, DoNotCall, TelephonyCall
from postloan.telephony.provider import DialRequest

log = logging.getLogger(__name__)

DIAL_TASK = "postloan.telephony_dial"
DIAL_BATCH_TASK = "postloan.telephony_dial_batch"
BATCH_MAX = 500


def within_call_hours(at: datetime | None = None) -> bool:
    start, end = config.call_hours()
    local = clock.ensure_aware(at or clock.now()).astimezone(clock.BUSINESS_TZ).time()
    return start <= local < end


def ensure_callable(session: Session, customer_id: int) -> Customer:
    """The customer, if a call to them may be placed now; else a refusal that changes nothing."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise CallSubjectNotFound()
    if session.get(DoNotCall, customer_id) is not None:
        raise DoNotCallRefused()
    if not within_call_hours():
        start, end = config.call_hours()
        raise OutsideCallHours(f"当前不在允许外呼的时段（北京时间 {start:%H:%M}–{end:%H:%M}）内，不能拨打")
    if not customer.phone_enc:
        raise NoPhoneNumber()
    return customer


def _new_call(session: Session, customer: Customer, *, staff_id: int, subject_kind: str | None,
              subject_id: int | None, batch_id: int | None = None) -> TelephonyCall:
    call = TelephonyCall(out_call_no="T" + clock.now().strftime("%y%m%d") + secrets.token_hex(6).upper(),
                         staff_id=staff_id, customer_id=customer.id, subject_kind=subject_kind,
                         subject_id=subject_id, batch_id=batch_id, phone_masked=customer.phone_masked or "",
                         status=CallStatus.QUEUED, created_at=clock.now())
    session.add(call)
    session.flush()
    # the number is decrypted on the server for this dial: each dial is audit-logged (who, whom, about what)
    audit.record(session, "telephony.dial", entity_type="customer", entity_id=customer.id,
                 after={"call_id": call.id, "staff_id": staff_id, "subject_kind": subject_kind,
                        "subject_id": subject_id, "batch_id": batch_id},
                 detail=f"外呼 {call.phone_masked}")
    return call


def place_call(session: Session, *, staff_id: int, customer_id: int, subject_kind: str | None = None,
               subject_id: int | None = None) -> TelephonyCall:
    """Click-to-call: check, store the call (queued) and enqueue its dial. Refusals change nothing."""
    customer = ensure_callable(session, customer_id)
    call = _new_call(session, customer, staff_id=staff_id, subject_kind=subject_kind, subject_id=subject_id)
    outbox.enqueue(session, DIAL_TASK, call.id)
    return call


class Refusal(NamedTuple):
    """A target of a batch dial list that was not dialled, and why (Chinese)."""

    customer_id: int
    reason: str
    subject_kind: str | None = None
    subject_id: int | None = None


def place_batch(session: Session, *, staff_id: int, name: str, targets: list[tuple[int, str | None, int | None]],
                ) -> tuple[DialBatch, list[TelephonyCall], list[Refusal]]:
    """A batch dial list: ``targets`` are (customer_id, subject_kind, subject_id). Targets that may not be
    called (do-not-call, hours, no number, a customer already on the list) are reported as :class:`Refusal`
    and left out; the others are dialled as one list."""
    if not targets or len(targets) > BATCH_MAX:
        from core.errors import ValidationFailed

        raise ValidationFailed(f"批量外呼名单须有 1–{BATCH_MAX} 个客户")
    batch = DialBatch(staff_id=staff_id, name=(name or "批量外呼")[:80], created_at=clock.now())
    session.add(batch)
    session.flush()
    calls: list[TelephonyCall] = []
    refused: list[Refusal] = []
    seen: set[int] = set()
    for customer_id, kind, subject_id in targets:
        if customer_id in seen:
            if kind is not None:  # a second case of the same borrower: one call per person per list
                refused.append(Refusal(customer_id, "同一客户已在本名单中，只拨打一次", kind, subject_id))
            continue
        seen.add(customer_id)
        try:
            customer = ensure_callable(session, customer_id)
        except (CallSubjectNotFound, DoNotCallRefused, OutsideCallHours, NoPhoneNumber) as exc:
            refused.append(Refusal(customer_id, exc.message, kind, subject_id))
            continue
        calls.append(_new_call(session, customer, staff_id=staff_id, subject_kind=kind, subject_id=subject_id,
                               batch_id=batch.id))
    batch.total, batch.refused = len(calls), len(refused)
    if calls:
        outbox.enqueue(session, DIAL_BATCH_TASK, batch.id)
    session.flush()
    return batch, calls, refused


def _request(session: Session, call: TelephonyCall) -> DialRequest:
    customer = session.get(Customer, call.customer_id)
    staff = session.get(Staff, call.staff_id)
    cfg = config.get()
    return DialRequest(out_call_no=call.out_call_no, callee=pii.open_sealed(pii.PHONE, customer.phone_enc),
                       caller=staff.username if staff else str(call.staff_id), callback_url=cfg.callback_url)


def _accepted(session: Session, call: TelephonyCall, call_id: str | None, error: str) -> None:
    if call_id:
        call.status, call.provider_call_id, call.dialed_at = CallStatus.DIALING, call_id, clock.now()
    else:
        call.status, call.error, call.ended_at = CallStatus.FAILED, (error or "呼叫失败")[:300], clock.now()
        record_event(session, call.customer_id, "call", f"外呼失败：{call.error}", actor_staff_id=call.staff_id,
                     ref_type="telephony_call", ref_id=call.id)
        listeners.notify(session, call)  # failed before it rang: its subject (a case) records that too


def dial(session: Session, call_id: int) -> bool:
    """The dial task's body: hand a queued call to the provider (once). False if there was nothing to do.
    The hours and the do-not-call list are checked again: time passed since the call was placed."""
    call = session.scalar(select(TelephonyCall).where(TelephonyCall.id == call_id).with_for_update())
    if call is None or call.status != CallStatus.QUEUED:
        return False
    if session.get(DoNotCall, call.customer_id) is not None or not within_call_hours():
        _accepted(session, call, None, "拨号前检查未通过（勿扰或不在外呼时段）")
        return True
    accepted = config.provider().dial(_request(session, call))  # ProviderUnavailable: the task retries
    _accepted(session, call, accepted.call_id, accepted.error)
    session.flush()
    return True


def dial_batch(session: Session, batch_id: int) -> int:
    calls = list(session.scalars(select(TelephonyCall).where(TelephonyCall.batch_id == batch_id,
                                                             TelephonyCall.status == CallStatus.QUEUED)
                                 .order_by(TelephonyCall.id).with_for_update()))
    if not calls:
        return 0
    batch = session.get(DialBatch, batch_id)
    answers = config.provider().dial_batch(batch.name if batch else "", [_request(session, c) for c in calls])
    for call, accepted in zip(calls, answers, strict=True):
        _accepted(session, call, accepted.call_id, accepted.error)
    session.flush()
    return len(calls)


def fail_stuck(session: Session, older_than: timedelta) -> int:
    """Calls still queued long after they were placed (the provider stayed unreachable): failed."""
    stuck = list(session.scalars(select(TelephonyCall).where(
        TelephonyCall.status == CallStatus.QUEUED, TelephonyCall.created_at < clock.now() - older_than)
        .order_by(TelephonyCall.id).limit(500).with_for_update(skip_locked=True)))
    for call in stuck:
        _accepted(session, call, None, "呼叫中心无法连接")
    return len(stuck)


# --- do-not-call list ---------------------------------------------------------------------------------

def mark_do_not_call(session: Session, customer_id: int, *, staff_id: int | None, reason: str = "") -> DoNotCall:
    if session.get(Customer, customer_id) is None:
        raise CallSubjectNotFound()
    row = session.get(DoNotCall, customer_id)
    if row is None:
        row = DoNotCall(customer_id=customer_id, reason=reason[:200], marked_by_staff_id=staff_id,
                        marked_at=clock.now())
        session.add(row)
        record_event(session, customer_id, "call.do_not_call", f"登记为勿扰（拒绝来电）{('：' + reason) if reason else ''}",
                     actor_staff_id=staff_id)
        session.flush()
    return row


def clear_do_not_call(session: Session, customer_id: int, *, staff_id: int | None) -> bool:
    row = session.get(DoNotCall, customer_id)
    if row is None:
        return False
    session.delete(row)
    record_event(session, customer_id, "call.do_not_call", "解除勿扰", actor_staff_id=staff_id)
    session.flush()
    return True


def is_do_not_call(session: Session, customer_id: int) -> bool:
    return session.get(DoNotCall, customer_id) is not None


def do_not_call_list(session: Session, limit: int = 200) -> list[tuple[DoNotCall, Customer]]:
    return list(session.execute(select(DoNotCall, Customer).join(Customer, Customer.id == DoNotCall.customer_id)
                                .order_by(DoNotCall.marked_at.desc()).limit(limit)).all())


# --- reading ------------------------------------------------------------------------------------------

def list_calls(session: Session, *, staff_id: int | None = None, customer_id: int | None = None,
               subject_kind: str | None = None, subject_id: int | None = None, limit: int = 50,
               offset: int = 0) -> tuple[list[tuple[TelephonyCall, Customer, Staff]], int]:
    stmt = select(TelephonyCall, Customer, Staff).join(Customer, Customer.id == TelephonyCall.customer_id) \
        .join(Staff, Staff.id == TelephonyCall.staff_id)
    count = select(func.count()).select_from(TelephonyCall)
    for column, value in ((TelephonyCall.staff_id, staff_id), (TelephonyCall.customer_id, customer_id),
                          (TelephonyCall.subject_kind, subject_kind), (TelephonyCall.subject_id, subject_id)):
        if value is not None:
            stmt, count = stmt.where(column == value), count.where(column == value)
    rows = list(session.execute(stmt.order_by(TelephonyCall.id.desc()).limit(limit).offset(offset)).all())
    return rows, session.scalar(count) or 0


def get_settings_hours_label() -> str:
    start, end = config.call_hours(get_settings())
    return f"{start:%H:%M}–{end:%H:%M}"
