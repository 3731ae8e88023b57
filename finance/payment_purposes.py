"""Finance's payment purpose ``finance.fee``: the facilitator's own fees paid by the customer through
``payments`` (WeChat Pay from the mini-program, JSAPI), registered with payments as lending registers
``lending.installment``.

Two obligation kinds, applied by :func:`apply_fee` in the same transaction that marks the payment applied,
once per payment (a unique ``payment_order_id`` on the row it lands in):

- ``deposit:<agreement id>``: the agreed deposit (定金) of an agreement on the deposit list, amount what is
  still due (:func:`finance.deposits.deposit_due`); recorded as a confirmed deposit, posted (Dr 微信账户 /
  Cr 客户定金);
- ``settlement:<settlement id>:<revision>``: the WeChat part of a charged settlement (服务费), paid before
  结单; the charge's line names the payment, posted on arrival (Dr 微信账户 / Cr 客户定金) and applied at
  结单 (:func:`finance.settlements.receive_online`; withheld money: Dr 代扣账户); the charge cannot be changed
  afterwards.

A refusal (agreement cancelled or settled meanwhile, charge changed, another amount) leaves the money held
for review in payments.

A deposit refund that finance confirms for a deposit paid this way goes back the way it came
(:func:`finance.deposits.decide_refund`); the provider's result arrives here (:func:`on_refund`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.errors import NotFound
from finance import deposits, settlements
from finance.models import Agreement, Settlement
from payments import checkout, purposes, withholding
from payments.models import PaymentOrder

PURPOSE = "finance.fee"
_REFUND_REF = "finance_deposit_refund:"


@dataclass(frozen=True)
class FeeBill:
    agreement_id: int
    number: str
    customer_id: int
    amount: int  # fen due now
    kind: str = "deposit"  # deposit | settlement
    ref_id: int = 0  # the settlement (kind settlement)
    revision: int = 0  # the charge's revision the bill was made from

    @property
    def obligation_ref(self) -> str:
        if self.kind == "settlement":
            return f"settlement:{self.ref_id}:{self.revision}"
        return f"deposit:{self.agreement_id}"

    @property
    def title(self) -> str:
        return f"服务费（协议 {self.number}）" if self.kind == "settlement" else f"定金（协议 {self.number}）"


def parse(obligation_ref: str) -> tuple[str, list[int]]:
    """``deposit:<agreement>`` or ``settlement:<settlement>:<revision>``."""
    kind, *rest = obligation_ref.split(":")
    if (kind, len(rest)) not in (("deposit", 1), ("settlement", 2)) or not all(x.isdigit() for x in rest):
        raise NotFound(f"无法识别的费用事项：{obligation_ref}")
    return kind, [int(x) for x in rest]


def settlement_bill(session: Session, settlement: Settlement) -> FeeBill | None:
    """The WeChat part of a charged settlement (服务费), payable online before 结单, or None."""
    line = settlements.online_due(session, settlement)
    if line is None:
        return None
    agreement = session.get(Agreement, settlement.agreement_id)
    return FeeBill(agreement_id=agreement.id, number=agreement.number, customer_id=agreement.customer_id,
                   amount=line.amount, kind="settlement", ref_id=settlement.id, revision=settlement.revision)


def pay_settlement(session: Session, settlement: Settlement, *, openid: str) -> tuple[PaymentOrder, dict[str, str]]:
    bill = settlement_bill(session, settlement)
    if bill is None:
        raise NotFound("这笔结算当前没有待在线支付的服务费", code="finance_nothing_due")
    return checkout.start_jsapi(session, purpose=PURPOSE, obligation_ref=bill.obligation_ref,
                                customer_id=bill.customer_id, amount=bill.amount, description=bill.title,
                                openid=openid)


def withhold_settlement(session: Session, settlement: Settlement, *, staff_id: int | None) -> PaymentOrder:
    """Debit the settlement's WeChat part (服务费) under the customer's withholding authorisation (委托代扣,
    seed 003: one click after disbursement, against fee evasion); applied like an online payment when the
    provider's result arrives. Refused without an active authorisation covering ``finance.fee``, above its
    limit, or while another debit of the same charge is open."""
    bill = settlement_bill(session, settlement)
    if bill is None:
        raise NotFound("这笔结算当前没有待收的微信服务费（先在收费中登记微信部分）", code="finance_nothing_due")
    return withholding.request(session, purpose=PURPOSE, obligation_ref=bill.obligation_ref,
                               customer_id=bill.customer_id, amount=bill.amount, description=f"{bill.title}（代扣）",
                               staff_id=staff_id)


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
    kind, ids = parse(settlement.obligation_ref)
    if kind == "settlement":
        line = settlements.receive_online(session, ids[0], revision=ids[1], amount=settlement.amount,
                                          out_trade_no=settlement.out_trade_no, payment_order_id=settlement.order_id,
                                          withheld=settlement.method == "withholding")
        return f"finance_settlement_payment:{line.id}"
    deposit = deposits.receive_paid(session, ids[0], amount=settlement.amount, paid_date=settlement.paid_date,
                                    out_trade_no=settlement.out_trade_no, payment_order_id=settlement.order_id)
    return f"finance_deposit:{deposit.id}"


def on_refund(session: Session, outcome: purposes.RefundOutcome) -> None:
    if outcome.refund_ref.startswith(_REFUND_REF):
        deposits.provider_refund_done(session, int(outcome.refund_ref[len(_REFUND_REF):]),
                                      succeeded=outcome.succeeded, provider_status=outcome.provider_status)


purposes.register(PURPOSE, "服务费/定金", apply_fee, on_refund=on_refund)
