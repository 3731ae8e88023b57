"""Calls about a collection case: the 拨打 button places one through telephony, and every finished call
is recorded on its case as a ``call`` action (催收记录), once, in the transaction that records the result."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.scope import Viewer
from lending.models import Loan
from postloan import actions, cases
from postloan.exceptions import CaseClosed, CollectionInvalid
from postloan.models import CollectionCase
from postloan.telephony.calls import place_call
from postloan.telephony.listeners import on_call_finished
from postloan.telephony.models import RESULT_LABELS, TelephonyCall

SUBJECT_KIND = "collection_case"


def call_case(session: Session, case_id: int, *, viewer: Viewer) -> TelephonyCall:
    """Dial the case's borrower for the collector who holds the case (or a manager). Refusals (do-not-call,
    hours, a closed case, someone else's case) change nothing."""
    case = cases.get_case(session, viewer, case_id)
    if case.status != "open":
        raise CaseClosed()
    if viewer.role not in actions.MANAGERS and case.collector_staff_id != viewer.staff_id:
        raise CollectionInvalid("请先领取该案件再拨打")
    loan = session.get(Loan, case.loan_id)
    assert loan is not None
    return place_call(session, staff_id=viewer.staff_id, customer_id=loan.customer_id, subject_kind=SUBJECT_KIND,
                      subject_id=case.id)


@on_call_finished(SUBJECT_KIND)
def record_call(session: Session, call: TelephonyCall) -> None:
    case = session.get(CollectionCase, call.subject_id)
    if case is None:
        return
    loan = session.scalar(select(Loan).where(Loan.id == case.loan_id))
    assert loan is not None
    label = RESULT_LABELS.get(call.result or "", call.result or "")
    note = f"外呼 {call.phone_masked}" + (f"，通话 {call.duration_seconds} 秒" if call.duration_seconds else "")
    actions.write_action(session, loan, kind="call", staff_id=call.staff_id, note=note, outcome=label,
                         with_promise=False, promised_date=None, promised_amount=None, case_id=case.id)
