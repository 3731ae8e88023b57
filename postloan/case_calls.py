"""Calls about a collection case: the 拨打 button places one through telephony, a batch dial list is made of
cases (the collector's queue, one bucket of it, or chosen cases), and every call is recorded on its case as a
``call`` action (催收记录), once: a finished call in the transaction that records the result, a call that
failed before the provider rang (refused at dial time, stuck) when it fails, and a case left off a batch list
(do-not-call, outside the hours, no number) when the list is placed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import AppError, ValidationFailed
from crm.scope import Viewer
from lending.models import BUCKETS, Loan
from postloan import actions, cases
from postloan.exceptions import CaseClosed, CollectionInvalid
from postloan.models import CollectionCase
from postloan.telephony.calls import BATCH_MAX, Refusal, place_batch, place_call
from postloan.telephony.listeners import on_call_finished
from postloan.telephony.models import RESULT_LABELS, CallStatus, DialBatch, TelephonyCall

SUBJECT_KIND = "collection_case"
NOT_DIALLED = "未拨打"


def _workable(session: Session, viewer: Viewer, case_id: int) -> CollectionCase:
    """A case the viewer may dial now: in scope (else 404), open, held by them (or they manage)."""
    case = cases.get_case(session, viewer, case_id)
    if case.status != "open":
        raise CaseClosed()
    if viewer.role not in actions.MANAGERS and case.collector_staff_id != viewer.staff_id:
        raise CollectionInvalid("请先领取该案件再拨打")
    return case


def call_case(session: Session, case_id: int, *, viewer: Viewer) -> TelephonyCall:
    """Dial the case's borrower for the collector who holds the case (or a manager). Refusals (do-not-call,
    hours, a closed case, someone else's case) change nothing."""
    case = _workable(session, viewer, case_id)
    return place_call(session, staff_id=viewer.staff_id, customer_id=case.customer_id, subject_kind=SUBJECT_KIND,
                      subject_id=case.id)


@dataclass(frozen=True)
class DialList:
    batch: DialBatch | None
    calls: list[TelephonyCall]
    refused: list[Refusal]  # subject_id: the case (None: a case id that could not be used at all)


def dial_cases(session: Session, *, viewer: Viewer, name: str = "", case_ids: list[int] | None = None,
               bucket: str | None = None) -> DialList:
    """A batch dial list of cases: the chosen ``case_ids`` (each in scope, open and the viewer's to work), or
    else the viewer's own open cases (of one ``bucket`` if given), longest overdue first. Each call lands on
    its case; a case left off the list (do-not-call, hours, no number) is recorded on the case as not dialled."""
    if bucket and bucket not in BUCKETS[1:]:
        raise ValidationFailed(f"账期不正确：{bucket}", field="bucket")
    refused: list[Refusal] = []
    chosen: list[CollectionCase] = []
    if case_ids:
        if len(case_ids) > BATCH_MAX:
            raise ValidationFailed(f"批量外呼名单最多 {BATCH_MAX} 个案件")
        for case_id in dict.fromkeys(case_ids):
            try:
                chosen.append(_workable(session, viewer, case_id))
            except AppError as exc:
                refused.append(Refusal(0, f"案件 #{case_id}：{exc.message}", None, None))
    else:
        rows = cases.queue(session, viewer, status="open", bucket=bucket, mine=True, limit=BATCH_MAX)
        chosen = [row.case for row in rows]
    if not chosen:
        if refused:
            return DialList(None, [], refused)
        raise ValidationFailed("没有可拨打的案件：您的队列里没有符合条件的在催案件")
    batch, placed, left_off = place_batch(session, staff_id=viewer.staff_id, name=name,
                                          targets=[(c.customer_id, SUBJECT_KIND, c.id) for c in chosen])
    by_id = {c.id: c for c in chosen}
    for refusal in left_off:
        case = by_id.get(refusal.subject_id or 0)
        if case is not None:
            _record(session, case, staff_id=viewer.staff_id, outcome=NOT_DIALLED,
                    note=f"批量外呼「{batch.name}」未拨打：{refusal.reason}")
    return DialList(batch, placed, refused + left_off)


def _record(session: Session, case: CollectionCase, *, staff_id: int | None, outcome: str, note: str) -> None:
    loan = session.scalar(select(Loan).where(Loan.id == case.loan_id))
    assert loan is not None
    actions.write_action(session, loan, kind="call", staff_id=staff_id, note=note[:500], outcome=outcome,
                         with_promise=False, promised_date=None, promised_amount=None, case_id=case.id)


@on_call_finished(SUBJECT_KIND)
def record_call(session: Session, call: TelephonyCall) -> None:
    case = session.get(CollectionCase, call.subject_id)
    if case is None:
        return
    if call.status == CallStatus.FAILED:
        _record(session, case, staff_id=call.staff_id, outcome="呼叫失败",
                note=f"外呼 {call.phone_masked} 未接通呼叫中心：{call.error or '呼叫失败'}")
        return
    label = RESULT_LABELS.get(call.result or "", call.result or "")
    note = f"外呼 {call.phone_masked}" + (f"，通话 {call.duration_seconds} 秒" if call.duration_seconds else "")
    _record(session, case, staff_id=call.staff_id, outcome=label, note=note)
