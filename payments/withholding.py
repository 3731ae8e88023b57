"""Withholding (代扣): the customer's authorisation and the debits made under it.

Authorisation (:func:`authorize`): who (customer), when, which account (the bank account number sealed
by ``core.pii``, shown masked), scope (the purposes it covers), a limit per debit, the consent text's
version, how it was given (mini-program / console). Registered with the provider (contract id);
revocable (:func:`revoke`), after which nothing more is debited.

A debit is a payment order with ``method = "withholding"`` (:func:`request`): created → submitted (the
provider accepted it) → succeeded | failed, or unknown when the provider's answer could not be read
(polled until known) → reconciled. A failed debit is retried as a NEW attempt (a new out_trade_no) on
:data:`RETRY_SCHEDULE`, while the authorisation stands; the periodic ``payments.retry_withholdings``
creates the attempts that are due.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, clock, outbox, pii
from payments import config, orders
from payments.exceptions import (
    AuthorizationInvalid,
    AuthorizationMissing,
    OrderStateConflict,
    ProviderRefused,
    ProviderUnavailable,
)
from payments.models import PaymentOrder, WithholdingAuthorization

SUBMIT_TASK = "payments.submit_withholding"
RETRY_SCHEDULE = orders.WITHHOLDING_RETRY_SCHEDULE
CONSENT_VERSION = "withholding-2026-01"
SIGNED_VIA = frozenset({"miniprogram", "console"})


def mask_account(account_no: str) -> str:
    return f"{account_no[:4]} **** **** {account_no[-4:]}"


def authorize(session: Session, *, customer_id: int, account_no: str, holder_name: str, bank_name: str,
              scope: list[str], max_amount: int, signed_via: str, staff_id: int | None = None,
              consent_version: str = CONSENT_VERSION) -> WithholdingAuthorization:
    account = re.sub(r"\s+", "", account_no or "")
    if not re.fullmatch(r"\d{12,19}", account):
        raise AuthorizationInvalid("银行卡号应为 12–19 位数字", field="account_no")
    holder, bank = (holder_name or "").strip(), (bank_name or "").strip()
    if not holder or len(holder) > 40:
        raise AuthorizationInvalid("请填写持卡人姓名", field="holder_name")
    if not bank or len(bank) > 40:
        raise AuthorizationInvalid("请填写开户银行", field="bank_name")
    if not scope or any(not s or "," in s for s in scope):
        raise AuthorizationInvalid("请选择授权代扣的用途", field="scope")
    if isinstance(max_amount, bool) or not isinstance(max_amount, int) or max_amount <= 0:
        raise AuthorizationInvalid("单笔限额必须是大于 0 的整数（分）", field="max_amount")
    if signed_via not in SIGNED_VIA:
        raise AuthorizationInvalid("未知的授权方式", field="signed_via")
    code = "WA" + clock.today().strftime("%Y%m%d") + secrets.token_hex(6).upper()
    contract_id = config.provider().sign_withholding_contract(contract_code=code, account_no=account,
                                                              holder_name=holder, bank_name=bank,
                                                              max_amount=max_amount)
    row = WithholdingAuthorization(
        customer_id=customer_id, contract_code=code, provider_contract_id=contract_id,
        account_enc=pii.seal(pii.PAYLOAD, account), account_masked=mask_account(account), bank_name=bank,
        holder_name=holder, scope=",".join(sorted(set(scope))), max_amount=max_amount, signed_via=signed_via,
        consent_version=consent_version, status="active", by_staff_id=staff_id, signed_at=clock.now())
    session.add(row)
    session.flush()
    audit.record(session, "payments.withholding.authorize", entity_type="withholding_authorization",
                 entity_id=row.id, after={"customer_id": customer_id, "account": row.account_masked,
                                          "scope": row.scope, "max_amount": max_amount, "signed_via": signed_via})
    return row


def revoke(session: Session, authorization_id: int, *, reason: str, staff_id: int | None) -> WithholdingAuthorization:
    reason = (reason or "").strip()
    if not reason:
        raise AuthorizationInvalid("请填写撤销原因", field="reason")
    row = session.scalar(select(WithholdingAuthorization).where(WithholdingAuthorization.id == authorization_id)
                         .with_for_update())
    if row is None:
        raise AuthorizationMissing("代扣授权不存在")
    if row.status != "active":
        raise OrderStateConflict("该代扣授权已撤销")
    if row.provider_contract_id:
        config.provider().terminate_withholding_contract(row.provider_contract_id, reason)
    row.status, row.revoked_at, row.revoked_reason, row.revoked_by_staff_id = ("revoked", clock.now(), reason[:200],
                                                                               staff_id)
    audit.record(session, "payments.withholding.revoke", entity_type="withholding_authorization", entity_id=row.id,
                 after={"status": "revoked"}, detail=reason)
    session.flush()
    return row


def reveal_account(session: Session, row: WithholdingAuthorization) -> str:
    """The full account number, audit-logged."""
    audit.record(session, "payments.withholding.reveal_account", entity_type="withholding_authorization",
                 entity_id=row.id)
    return pii.open_sealed(pii.PAYLOAD, row.account_enc)


def active_for(session: Session, customer_id: int, purpose: str) -> WithholdingAuthorization | None:
    for row in session.scalars(select(WithholdingAuthorization).where(
            WithholdingAuthorization.customer_id == customer_id, WithholdingAuthorization.status == "active")
            .order_by(WithholdingAuthorization.id.desc())):
        if purpose in row.scope.split(","):
            return row
    return None


def request(session: Session, *, purpose: str, obligation_ref: str, customer_id: int, amount: int,
            description: str, staff_id: int | None = None, retry_of: PaymentOrder | None = None) -> PaymentOrder:
    """A withholding order for an obligation under the customer's authorisation; submitted by a task."""
    auth = active_for(session, customer_id, purpose)
    if auth is None:
        raise AuthorizationMissing("客户没有覆盖该用途的有效代扣授权")
    if amount > auth.max_amount:
        raise AuthorizationInvalid("金额超过代扣授权的单笔限额", field="amount")
    for open_order in orders.latest_attempts(session, purpose, obligation_ref):
        if open_order.status in orders.OPEN:
            raise OrderStateConflict(f"该应付事项已有进行中的代扣（{open_order.out_trade_no}）")
    order = orders.create(session, purpose=purpose, obligation_ref=obligation_ref, customer_id=customer_id,
                          amount=amount, description=description, method="withholding",
                          authorization_id=auth.id, retry_of_id=retry_of.id if retry_of else None,
                          source="staff" if staff_id else "system", staff_id=staff_id)
    outbox.enqueue(session, SUBMIT_TASK, order.id)
    return order


def submit(session: Session, order_id: int) -> PaymentOrder:
    """Send a created debit to the provider (task). Unreadable answer → unknown (polled)."""
    order = orders.get(session, order_id, for_update=True)
    if order.status != "created":
        return order
    auth = session.get(WithholdingAuthorization, order.authorization_id)
    if auth is None or auth.status != "active" or not auth.provider_contract_id:
        orders.move(session, order, "failed", source="system", reason="代扣授权已撤销")
        session.flush()
        return order
    order.checks += 1
    try:
        result = config.provider().withhold(out_trade_no=order.out_trade_no, contract_id=auth.provider_contract_id,
                                            amount=order.total_amount, description=order.description)
    except ProviderUnavailable as exc:
        orders.move(session, order, "unknown", source="system", reason=exc.message)
        order.next_check_at = clock.now() + orders.POLL_DELAYS[0]
        session.flush()
        return order
    except ProviderRefused as exc:
        orders.move(session, order, "failed", source="system", reason=exc.message)
        orders.schedule_withholding_retry(order)
        session.flush()
        return order
    orders.move(session, order, "submitted", source="system", reason="渠道已受理")
    order.next_check_at = clock.now() + orders.POLL_DELAYS[0]
    session.flush()
    if result.trade_state != "ACCEPT":
        orders.record_result(session, result, source="poll")
    return order


def retries_due(session: Session, limit: int = 200) -> list[int]:
    return list(session.scalars(select(PaymentOrder.id).where(
        PaymentOrder.method == "withholding", PaymentOrder.status == "failed",
        PaymentOrder.next_check_at.is_not(None), PaymentOrder.next_check_at <= clock.now())
        .order_by(PaymentOrder.next_check_at).limit(limit)))


def retry(session: Session, order_id: int) -> PaymentOrder | None:
    """The next attempt of a failed debit, if it is due, still the latest, and still authorised."""
    order = orders.get(session, order_id, for_update=True)
    if order.status != "failed" or order.next_check_at is None or order.next_check_at > clock.now():
        return None
    order.next_check_at = None
    latest = orders.latest_attempts(session, order.purpose, order.obligation_ref)[0]
    if latest.id != order.id or order.customer_id is None:
        return None
    try:
        return request(session, purpose=order.purpose, obligation_ref=order.obligation_ref,
                       customer_id=order.customer_id, amount=order.total_amount, description=order.description,
                       retry_of=order)
    except (AuthorizationMissing, AuthorizationInvalid):
        return None
