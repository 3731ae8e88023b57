"""The payment-provider interface. The WeChat Pay adapter (:mod:`payments.wechatpay`) implements it
against the real API or the simulator (same code, another base URL); the domain code sees only this.

Outcomes a provider reports, in WeChat Pay's words (``trade_state``): SUCCESS, NOTPAY, USERPAYING,
CLOSED, PAYERROR, REFUND (paid, then refunded), REVOKED; withholding adds ACCEPT (submitted, result
pending). A call that cannot be read raises :class:`~payments.exceptions.ProviderUnavailable` (the
outcome is unknown); a business refusal raises :class:`~payments.exceptions.ProviderRefused`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

PAID_STATES = frozenset({"SUCCESS", "REFUND"})
FAILED_STATES = frozenset({"PAYERROR", "REVOKED"})
PENDING_STATES = frozenset({"NOTPAY", "USERPAYING", "ACCEPT"})


@dataclass(frozen=True)
class TradeResult:
    """What the provider says of one order (from a query or a notification)."""

    out_trade_no: str
    trade_state: str
    transaction_id: str | None = None
    amount: int | None = None  # fen actually paid
    success_at: datetime | None = None
    message: str = ""


@dataclass(frozen=True)
class RefundResult:
    out_refund_no: str
    status: str  # SUCCESS | PROCESSING | ABNORMAL | CLOSED
    refund_id: str | None = None


@dataclass(frozen=True)
class BillLine:
    """One line of the provider's daily trade bill (对账单)."""

    out_trade_no: str
    transaction_id: str
    trade_state: str  # SUCCESS | REFUND
    amount: int  # fen
    refund_amount: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    name: str

    def create_jsapi(self, *, out_trade_no: str, description: str, amount: int, openid: str,
                     expire_at: datetime) -> str:
        """Place a JSAPI order; returns the prepay_id."""

    def mp_pay_params(self, prepay_id: str) -> dict[str, str]:
        """The signed parameters the mini-program hands to ``wx.requestPayment``."""

    def query(self, out_trade_no: str) -> TradeResult: ...

    def close(self, out_trade_no: str) -> None: ...

    def refund(self, *, out_refund_no: str, out_trade_no: str, refund_amount: int, total_amount: int,
               reason: str) -> RefundResult: ...

    def query_refund(self, out_refund_no: str) -> RefundResult: ...

    def trade_bill(self, bill_date: date) -> list[BillLine]: ...

    def sign_withholding_contract(self, *, contract_code: str, account_no: str, holder_name: str, bank_name: str,
                                  max_amount: int) -> str:
        """Register a withholding authorisation; returns the provider's contract id."""

    def terminate_withholding_contract(self, contract_id: str, reason: str) -> None: ...

    def withhold(self, *, out_trade_no: str, contract_id: str, amount: int, description: str) -> TradeResult:
        """Ask for a debit; usually ACCEPT (the result follows by notification or query)."""

    def query_withholding(self, out_trade_no: str) -> TradeResult: ...
