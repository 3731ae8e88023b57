"""Customer transfers in WeCom (离职继承 / 在职继承), carried out for the handover domain.

The domain (:mod:`crm.handover_flows`) moves the customers in our CRM and writes one
:class:`WeComTransfer` row per WeCom contact in status ``requested``; it enqueues
``bot.transfer_customers`` with the case id. This module does the WeCom side and reports every
outcome back through :func:`crm.handover.apply_transfer_result` (the domain's state machine, which
also writes the transition record and the customer's timeline event):

- :func:`submit_case`: the case's ``requested`` rows, grouped by (kind, handover, takeover), in
  batches of at most 100 external_userids per call (``resigned/transfer_customer`` for a departure,
  ``transfer_customer`` in service). One transaction per batch, the rows locked during the call
  (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so a re-run or a second worker never re-requests a
  row already waiting or finished. Per customer: errcode 0 → ``waiting``; 40129 (WeCom already has a
  transfer of this customer in progress, e.g. our own call whose answer we lost) → ``waiting``, the
  result poll settles it; any other errcode → ``failed`` with the code. In service, WeCom's rule of
  at most 2 transfers per customer per 90 days is checked before calling: a third is marked
  ``failed`` without calling WeCom.
- :func:`poll_results`: every (kind, handover, takeover) pair with ``waiting`` rows, through the
  matching result API with cursor paging: status 1 taken over, 2 still waiting, 3 refused, 4 takeover
  member at the customer limit, 5 no record (failed).
- :func:`on_transfer_fail`: the ``transfer_fail`` callback (``UserID`` is the TAKEOVER member),
  matched to our waiting row by (external_userid, takeover_userid).
- :func:`transfer_group_chats`: the departed owner's group chats awaiting inheritance
  (``groupchat/list`` status_filter 1) to the main successor, ≤100 chat ids a call; the outcome is
  audit-logged on the case (``wecom.groupchat.transfer``), which the case page shows.

WeCom sends no callback for changes made through the API, so local state is updated here: the
transfer rows and the customers' timelines (through the domain), and a notification to the new owner
when WeCom did not move a customer (the CRM owner changed, the WeCom relation did not).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.gateway import Gateway, get_gateway
from bot.wecom_errors import ERRCODE_HINTS, WecomApiError, WecomRateLimited
from core import audit, clock
from core.db import unit_of_work
from crm import handover, notify
from crm.models import (
    Customer,
    HandoverCase,
    HandoverKind,
    Staff,
    TransferKind,
    TransferStatus,
    WeComTransfer,
)

log = logging.getLogger(__name__)

BATCH = 100  # WeCom: at most 100 external_userids (or chat ids) per transfer call
IN_PROGRESS_ERRCODE = 40129  # WeCom already has a transfer of this customer in progress
RESULT_STATUS = {1: TransferStatus.TAKEN_OVER, 3: TransferStatus.REFUSED, 4: TransferStatus.LIMIT_REACHED,
                 5: TransferStatus.FAILED}  # 2: still waiting
FAIL_REASONS = {"customer_refused": TransferStatus.REFUSED, "customer_limit_exceed": TransferStatus.LIMIT_REACHED}
WAITING_GIVE_UP = timedelta(days=7)  # a waiting row WeCom never reports on is failed after this
GROUPCHAT_ACTION = "wecom.groupchat.transfer"
TRANSFER_FAIL_KIND = "event:change_external_contact:transfer_fail"
OUTCOME_LABELS = {"refused": "客户拒绝", "limit_reached": "接替人客户数已达上限", "failed": "转接失败"}


@dataclass
class SubmitReport:
    calls: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    refused_before_call: int = 0


def _actor() -> audit.Actor:
    return audit.Actor.system("企业微信转接")


def _reason(errcode: int) -> str:
    return f"企业微信返回错误码 {errcode}：{ERRCODE_HINTS.get(errcode, '未知错误')}"


# --- submitting ------------------------------------------------------------------------------------

def _groups(session: Session, case_id: int) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in session.execute(
        select(WeComTransfer.kind, WeComTransfer.handover_userid, WeComTransfer.takeover_userid)
        .where(WeComTransfer.case_id == case_id, WeComTransfer.status == TransferStatus.REQUESTED)
        .distinct().order_by(WeComTransfer.kind, WeComTransfer.handover_userid, WeComTransfer.takeover_userid))]


def _lock_batch(session: Session, case_id: int, group: tuple[str, str, str], after_id: int) -> list[WeComTransfer]:
    kind, handover_userid, takeover_userid = group
    return list(session.scalars(
        select(WeComTransfer)
        .where(WeComTransfer.case_id == case_id, WeComTransfer.status == TransferStatus.REQUESTED,
               WeComTransfer.kind == kind, WeComTransfer.handover_userid == handover_userid,
               WeComTransfer.takeover_userid == takeover_userid, WeComTransfer.id > after_id)
        .order_by(WeComTransfer.id).limit(BATCH).with_for_update(skip_locked=True)))


def _over_limit(session: Session, rows: Sequence[WeComTransfer]) -> set[int]:
    """In-service rows that would be a customer's third transfer in 90 days. The domain's count
    includes the row itself (it is ``requested``), so more than the limit means over it."""
    in_service = [r.customer_id for r in rows if r.kind == TransferKind.IN_SERVICE]
    if not in_service:
        return set()
    counts = handover.in_service_transfers_in_window(session, in_service, clock.now())
    return {r.id for r in rows if r.kind == TransferKind.IN_SERVICE and counts.get(r.customer_id, 0) > handover.IN_SERVICE_LIMIT}


def _call(gw: Gateway, kind: str, handover_userid: str, takeover_userid: str,
          external_userids: list[str]) -> dict[str, Any]:
    if kind == TransferKind.RESIGNED:
        return gw.resigned_transfer_customer(handover_userid, takeover_userid, external_userids)
    return gw.transfer_customer(handover_userid, takeover_userid, external_userids)


def _submit_batch(session: Session, gw: Gateway, rows: list[WeComTransfer], report: SubmitReport) -> None:
    actor = _actor()
    batch = list(rows)
    limited = _over_limit(session, rows)
    for row in rows:
        if row.id in limited:
            handover.apply_transfer_result(session, row.id, TransferStatus.FAILED, actor=actor,
                                           reason="90 天内已在职转接 2 次，企业微信不允许再次转接（未提交企业微信）")
            report.refused_before_call += 1
            report.statuses[TransferStatus.FAILED] += 1
    rows = [r for r in rows if r.id not in limited]
    if not rows:
        _notify_unmoved(session, batch)
        return
    first = rows[0]
    try:
        answer = _call(gw, first.kind, first.handover_userid, first.takeover_userid,
                       [r.external_userid for r in rows])
    except WecomRateLimited:
        raise  # still limited after the gateway's backoff: the task retries later
    except WecomApiError as exc:
        # WeCom refused the whole call (a parameter, a member who has not left yet …): a retry would
        # get the same answer, so every row of the batch fails with the code, visible on the case page.
        report.calls += 1
        for row in rows:
            handover.apply_transfer_result(session, row.id, TransferStatus.FAILED, errcode=exc.errcode,
                                           actor=actor, reason=exc.message)
            report.statuses[TransferStatus.FAILED] += 1
        _notify_unmoved(session, batch)
        log.warning("wecom transfer call refused for %s rows: %s", len(rows), exc.errcode)
        return
    report.calls += 1
    per_customer = {str(c.get("external_userid")): int(c.get("errcode") or 0) for c in answer.get("customer") or []}
    for row in rows:
        errcode = per_customer.get(row.external_userid)
        if errcode is None:
            status, code, reason = TransferStatus.FAILED, None, "企业微信未返回该客户的转接结果"
        elif errcode == 0:
            status, code, reason = TransferStatus.WAITING, None, "企业微信已受理，24 小时后自动接替"
        elif errcode == IN_PROGRESS_ERRCODE:
            status, code, reason = TransferStatus.WAITING, errcode, "企业微信中该客户已在转接中，以转接结果为准"
        else:
            status, code, reason = TransferStatus.FAILED, errcode, _reason(errcode)
        handover.apply_transfer_result(session, row.id, status, errcode=code, actor=actor, reason=reason)
        report.statuses[status] += 1
    _notify_unmoved(session, [r for r in batch if r.status in OUTCOME_LABELS])


def submit_case(case_id: int, gw: Gateway | None = None) -> SubmitReport:
    """Request the case's ``requested`` transfers from WeCom (see the module docstring)."""
    gw = gw or get_gateway()
    report = SubmitReport()
    with unit_of_work() as session:
        groups = _groups(session, case_id)
    for group in groups:
        after_id = 0
        while True:
            with unit_of_work() as session:
                rows = _lock_batch(session, case_id, group, after_id)
                if not rows:
                    break
                after_id = rows[-1].id
                _submit_batch(session, gw, rows, report)
    if report.calls or report.refused_before_call:
        with unit_of_work() as session:
            audit.record(session, "wecom.transfer.submit", entity_type="handover_case", entity_id=case_id,
                         after={"calls": report.calls, "refused_before_call": report.refused_before_call,
                                **{str(k): v for k, v in report.statuses.items()}}, actor=_actor())
    return report


def stale_requested_cases(session: Session, older_than: timedelta = timedelta(minutes=10)) -> list[int]:
    """Cases with rows still ``requested`` a while after execution (a lost task, a crashed worker)."""
    return list(session.scalars(
        select(WeComTransfer.case_id).where(WeComTransfer.status == TransferStatus.REQUESTED,
                                            WeComTransfer.case_id.isnot(None),
                                            WeComTransfer.requested_at < clock.now() - older_than)
        .distinct().order_by(WeComTransfer.case_id)))


# --- results ---------------------------------------------------------------------------------------

def _result_pages(gw: Gateway, kind: str, handover_userid: str, takeover_userid: str) -> Iterator[dict[str, Any]]:
    cursor = ""
    for _ in range(10_000):  # bounded: a cursor that never ends is WeCom's bug, not a reason to loop forever
        if kind == TransferKind.RESIGNED:
            page = gw.resigned_transfer_result(handover_userid, takeover_userid, cursor)
        else:
            page = gw.transfer_result(handover_userid, takeover_userid, cursor)
        yield from page.get("customer") or []
        cursor = page.get("next_cursor") or ""
        if not cursor:
            return


def waiting_pairs(session: Session) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in session.execute(
        select(WeComTransfer.kind, WeComTransfer.handover_userid, WeComTransfer.takeover_userid)
        .where(WeComTransfer.status == TransferStatus.WAITING).distinct()
        .order_by(WeComTransfer.kind, WeComTransfer.handover_userid, WeComTransfer.takeover_userid))]


def poll_results(gw: Gateway | None = None) -> Counter[str]:
    """Ask WeCom how every waiting transfer ended; returns the transitions made, by status."""
    gw = gw or get_gateway()
    done: Counter[str] = Counter()
    with unit_of_work() as session:
        pairs = waiting_pairs(session)
    for kind, handover_userid, takeover_userid in pairs:
        statuses = {str(c.get("external_userid")): int(c.get("status") or 0)
                    for c in _result_pages(gw, kind, handover_userid, takeover_userid)}
        with unit_of_work() as session:
            rows = list(session.scalars(
                select(WeComTransfer).where(WeComTransfer.status == TransferStatus.WAITING,
                                            WeComTransfer.kind == kind,
                                            WeComTransfer.handover_userid == handover_userid,
                                            WeComTransfer.takeover_userid == takeover_userid)
                .order_by(WeComTransfer.id).with_for_update(skip_locked=True)))
            changed = []
            for row in rows:
                status = RESULT_STATUS.get(statuses.get(row.external_userid, 0))
                reason = None
                if status is None and row.updated_at < clock.now() - WAITING_GIVE_UP:
                    status, reason = TransferStatus.FAILED, "企业微信超过 7 天未给出转接结果"
                elif status == TransferStatus.FAILED:
                    reason = "企业微信无该转接记录"
                if status is None:
                    continue
                handover.apply_transfer_result(session, row.id, status, actor=_actor(), reason=reason)
                done[status] += 1
                changed.append(row)
            _notify_unmoved(session, [r for r in changed if r.status in OUTCOME_LABELS])
    return done


def on_transfer_fail(session: Session, fields: dict[str, str]) -> None:
    """The ``transfer_fail`` callback: ``UserID`` is the takeover member; our waiting row for
    (ExternalUserID, UserID) gets the outcome. A transfer we did not make (WeCom's own console) has no
    row and changes nothing."""
    external_userid, takeover_userid = fields.get("ExternalUserID", ""), fields.get("UserID", "")
    row = session.scalar(
        select(WeComTransfer).where(WeComTransfer.external_userid == external_userid,
                                    WeComTransfer.takeover_userid == takeover_userid,
                                    WeComTransfer.status.in_((TransferStatus.REQUESTED, TransferStatus.WAITING)))
        .order_by(WeComTransfer.id.desc()).limit(1).with_for_update())
    if row is None:
        log.info("transfer_fail for a transfer we did not request (takeover %s)", takeover_userid)
        return
    if row.status == TransferStatus.REQUESTED:
        # Our call's answer is not committed yet: let the inbox retry this event shortly.
        raise TransferNotAcknowledged()
    reason = fields.get("FailReason", "")
    status = FAIL_REASONS.get(reason, TransferStatus.FAILED)
    handover.apply_transfer_result(session, row.id, status, actor=_actor(),
                                   reason=f"企业微信转接失败回调：{reason or '未说明原因'}")
    _notify_unmoved(session, [row])


class TransferNotAcknowledged(Exception):  # noqa: N818 - a retry signal, not an error for people
    """A transfer_fail arrived for a row whose WeCom acceptance is not recorded yet."""


def _notify_unmoved(session: Session, rows: Sequence[WeComTransfer]) -> None:
    """One notice per current owner: WeCom did not move these customers (the CRM owner did change)."""
    if not rows:
        return
    owners = dict(session.execute(select(Customer.id, Customer.owner_id)
                                  .where(Customer.id.in_([r.customer_id for r in rows]))).all())
    by_owner: dict[int, Counter[str]] = defaultdict(Counter)
    for row in rows:
        owner = owners.get(row.customer_id)
        if owner is not None:
            by_owner[owner][row.status] += 1
    for owner, counts in sorted(by_owner.items()):
        parts = "、".join(f"{OUTCOME_LABELS[s]} {n} 位" for s, n in sorted(counts.items()))
        notify.notify(session, owner, "wecom_transfer", "企业微信客户转接未成功",
                      f"企业微信未能把 {sum(counts.values())} 位客户转给您（{parts}）。"
                      "这些客户在企业微信中仍未添加您，请主动联系客户重新添加。")


# --- group chats of a departed owner ----------------------------------------------------------------

def _successor_userid(session: Session, case: HandoverCase) -> str | None:
    """The successor who received the most customers (ties: lowest staff id) and is on WeCom."""
    to_staff = (case.summary or {}).get("to_staff") or {}
    ranked = sorted(((int(n), -int(sid)) for sid, n in to_staff.items()), reverse=True)
    ids = [-neg for _, neg in ranked]
    if not ids:
        return None
    userids = dict(session.execute(select(Staff.id, Staff.wecom_userid).where(Staff.id.in_(ids))).all())
    return next((userids[i] for i in ids if userids.get(i)), None)


def transfer_group_chats(case_id: int, gw: Gateway | None = None) -> dict[str, Any] | None:
    """A departure case's group chats: the departed owner's chats awaiting inheritance go to the main
    successor. Idempotent: transferred chats are no longer listed as awaiting inheritance."""
    gw = gw or get_gateway()
    with unit_of_work() as session:
        case = session.get(HandoverCase, case_id)
        if case is None or case.kind != HandoverKind.DEPARTURE:
            return None
        owner = session.scalar(select(Staff.wecom_userid).where(Staff.id == case.from_staff_id))
        new_owner = _successor_userid(session, case)
    if not owner:
        return None
    chat_ids: list[str] = []
    cursor = ""
    for _ in range(10_000):
        page = gw.groupchat_list(status_filter=1, owner_userids=[owner], limit=1000, cursor=cursor)
        chat_ids += [str(c["chat_id"]) for c in page.get("group_chat_list") or []]
        cursor = page.get("next_cursor") or ""
        if not cursor:
            break
    if not chat_ids:
        return None
    result: dict[str, Any] = {"owner": owner, "new_owner": new_owner, "found": len(chat_ids), "transferred": [],
                              "failed": []}
    if new_owner is None:
        result["failed"] = [{"chat_id": c, "errcode": None, "reason": "没有绑定企业微信的接收人"} for c in chat_ids]
    else:
        for start in range(0, len(chat_ids), BATCH):
            part = chat_ids[start:start + BATCH]
            try:
                answer = gw.groupchat_transfer(part, new_owner)
            except WecomRateLimited:
                raise
            except WecomApiError as exc:
                result["failed"] += [{"chat_id": c, "errcode": exc.errcode, "reason": exc.message} for c in part]
                continue
            failed = {str(f.get("chat_id")): f for f in answer.get("failed_chat_list") or []}
            for chat_id in part:
                if chat_id in failed:
                    code = int(failed[chat_id].get("errcode") or 0)
                    result["failed"].append({"chat_id": chat_id, "errcode": code, "reason": _reason(code)})
                else:
                    result["transferred"].append(chat_id)
    with unit_of_work() as session:
        # (The audit log keeps flat values: ids joined, failures as "chat id：reason".)
        audit.record(session, GROUPCHAT_ACTION, entity_type="handover_case", entity_id=case_id, actor=_actor(),
                     after={"owner": owner, "new_owner": new_owner, "found": len(chat_ids),
                            "transferred": len(result["transferred"]), "failed": len(result["failed"]),
                            "transferred_ids": ",".join(result["transferred"]),
                            "failures": "；".join(f"{f['chat_id']}：{f['reason']}" for f in result["failed"])[:2000]},
                     detail=f"客户群转接：成功 {len(result['transferred'])} 个，失败 {len(result['failed'])} 个")
    return result


__all__ = [
    "BATCH", "GROUPCHAT_ACTION", "TRANSFER_FAIL_KIND", "SubmitReport", "TransferNotAcknowledged",
    "on_transfer_fail", "poll_results", "stale_requested_cases", "submit_case", "transfer_group_chats",
    "waiting_pairs",
]
