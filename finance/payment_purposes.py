"""Finance's payment purpose ``finance.fee``: the facilitator's own fees paid by the customer through
``payments`` (WeChat Pay from the mini-program, JSAPI), registered with payments as lending registers
``lending.installment``.

Today one obligation kind: the agreed deposit (定金) of an agreement on the deposit list, obligation
``deposit:<agreement id>``, amount what is still due (:func:`finance.deposits.deposit_due`). When the
money arrives, :func:`apply_fee` records it as a confirmed deposit and posts it (Dr 微信账户 / Cr 客户定金)
in the same transaction that marks the payment applied, once per payment (the deposit's unique
``payment_order_id``). A refusal (agreement cancelled or settled meanwhile, more than is due) leaves the
money held for review in payments.

A deposit refund that finance confirms for a deposit paid this way goes back the way it came
(:func:`finance.deposits.decide_refund`); the provider's result arrives here (:func:`on_refund`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.errors import NotFound
from finance import deposits
from finance.models import Agreement
from payments import checkout, purposes
from payments.models import PaymentOrder

PURPOSE = "finance.fee"
_REFUND_REF = "finance_deposit_refund:"


@dataclass(frozen=True)
class FeeBill:
    agreement_id: int
    number: str
    customer_id: int
    amount: int  # fen due now

    @property
    def obligation_ref(self) -> str:
        return f"deposit:{self.agreement_id}"

    @property
    def title(self) -> str:
        return f"定金（协议 {self.number}）"


def agreement_of(obligation_ref: str) -> int:
    kind, _, rest = obligation_ref.partition(":")
    if kind != "deposit" or not rest.isdigit():
        raise NotFound(f"无法识别的费用事项：{obligation_ref}")
    return int(rest)


def deposit_bill(session: Session, agreement: Agreement) -> FeeBill | None:
    """The deposit the customer may pay online now, or None."""
    due = deposits.deposit_due(session, agreement)
    if due <= 0:
        return None
    return FeeBill(agreement_id=agreement.id, number=agreement.number, customer_id=agreement.customer_id, amount=due)


def pay_deposit(session: Session, agreement: Agreement, *, openid: str) -> tuple[PaymentOrder, dict[str, str]]:
    """JSAPI checkout of the deposit due (a double tap pays once: the open attempt is returned)."""
    bill = deposit_bill(session, agreement)
    if bill is None:
        raise NotFound("这份协议当前没有待付的定金", code="finance_nothing_due")
    return checkout.start_jsapi(session, purpose=PURPOSE, obligation_ref=bill.obligation_ref,
                                customer_id=agreement.customer_id, amount=bill.amount, description=bill.title,
                                openid=openid)


def apply_fee(session: Session, settlement: purposes.Settlement) -> str:
    deposit = deposits.receive_paid(session, agreement_of(settlement.obligation_ref), amount=settlement.amount,
                                    paid_date=settlement.paid_date, out_trade_no=settlement.out_trade_no,
                                    payment_order_id=settlement.order_id)
    return f"finance_deposit:{deposit.id}"


def on_refund(session: Session, outcome: purposes.RefundOutcome) -> None:
    if outcome.refund_ref.startswith(_REFUND_REF):
        deposits.provider_refund_done(session, int(outcome.refund_ref[len(_REFUND_REF):]),
                                      succeeded=outcome.succeeded, provider_status=outcome.provider_status)


purposes.register(PURPOSE, "服务费/定金", apply_fee, on_refund=on_refund)
