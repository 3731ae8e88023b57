"""The terms of a loan as the schedule engine sees them, validated once with Chinese messages.

Amounts are integer fen; rates are Decimal fractions (``Decimal("0.12")`` is 12% a year).
Enum fields also accept their string values (``method="equal_principal"``), so a channel can pass
what it received; anything else is refused with :class:`core.errors.ValidationFailed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

from core.errors import ValidationFailed
from core.money import Rounding
from lending.schedule.exact import round_to

MAX_PRINCIPAL = 10**12  # fen: 100 亿元, far beyond any consumer or small-business loan
MAX_PERIODS = 600
MAX_RATE = Decimal(1)  # 100% a year; the comprehensive-cost cap (cap.py) is the business limit


class RepaymentMethod(StrEnum):
    EQUAL_INSTALLMENT = "equal_installment"  # 等额本息
    EQUAL_PRINCIPAL = "equal_principal"  # 等额本金
    INTEREST_FIRST = "interest_first"  # 先息后本
    BULLET = "bullet"  # 一次性还本付息

    @property
    def label(self) -> str:
        return _METHOD_LABELS[self]


_METHOD_LABELS = {
    RepaymentMethod.EQUAL_INSTALLMENT: "等额本息",
    RepaymentMethod.EQUAL_PRINCIPAL: "等额本金",
    RepaymentMethod.INTEREST_FIRST: "先息后本",
    RepaymentMethod.BULLET: "一次性还本付息",
}


class InterestMethod(StrEnum):
    DECLINING = "declining"  # 按剩余本金计息
    FLAT = "flat"  # 按初始本金计息（等本等息）


class InterestPeriod(StrEnum):
    SAME = "same"  # interest per repayment period: annual / 12 per month
    DAILY = "daily"  # interest on the actual days between due dates


class DayBasis(StrEnum):
    D360 = "360"
    D365 = "365"
    ACTUAL = "actual"  # 365 or 366 by the calendar year the days fall in


class FeeTiming(StrEnum):
    PER_PERIOD = "per_period"  # charged with every payment
    UPFRONT = "upfront"  # deducted from the money disbursed


def coerce_enum(cls: type[StrEnum], value: Any, field_name: str, label: str) -> Any:
    if isinstance(value, cls):
        return value
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return cls(str(value).strip())
        except ValueError:
            pass
    choices = "、".join(member.value for member in cls)
    raise ValidationFailed(f"{label}不正确：{value}（可选：{choices}）", field=field_name)


def _int(value: Any, field_name: str, label: str, *, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{label}必须是整数", field=field_name)
    if value < low or (high is not None and value > high):
        bound = f"不能小于 {low}" if value < low else f"不能大于 {high}"
        raise ValidationFailed(f"{label}{bound}：{value}", field=field_name)
    return value


def _rate(value: Any, field_name: str, label: str) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise ValidationFailed(f"{label}不能是浮点数，请使用 Decimal 或字符串", field=field_name)
    if isinstance(value, int | str):
        try:
            value = Decimal(str(value).strip())
        except ArithmeticError:
            raise ValidationFailed(f"{label}格式不正确：{value}", field=field_name) from None
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationFailed(f"{label}格式不正确：{value}", field=field_name)
    if value < 0 or value > MAX_RATE:
        raise ValidationFailed(f"{label}须在 0 到 {MAX_RATE * 100:.0f}% 之间：{value * 100}%", field=field_name)
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanTerms:
    """One loan's terms. ``periods`` counts every monthly period, grace periods included.

    - ``grace_interest`` first periods: no payment; the interest is capitalised into the balance.
    - ``grace_principal`` next periods: interest (and fee) only.
    - the remaining periods amortise by ``method``; bullet takes no grace.
    - ``installment_multiple`` (fen): equal-installment and equal-principal payments are rounded
      to this multiple with the product rounding mode; the last period absorbs the rest.
      1 (the default) means "no rounding beyond the currency digits".
    - the service fee is ``principal × service_fee_rate + service_fee_amount`` (rounded once),
      charged with every payment or once upfront (deducted from the money disbursed).
    - ``deposit`` (保证金) is withheld at disbursement and, if refundable, returned at the end.
    """

    principal: int
    annual_rate: Decimal
    periods: int
    method: RepaymentMethod
    start_date: date
    interest_method: InterestMethod = InterestMethod.DECLINING
    interest_period: InterestPeriod = InterestPeriod.SAME
    days_in_year: DayBasis = DayBasis.D360
    rounding: Rounding = Rounding.HALF_UP
    digits: int = 2
    installment_multiple: int = 1
    grace_principal: int = 0
    grace_interest: int = 0
    service_fee_rate: Decimal = field(default=Decimal(0))
    service_fee_amount: int = 0
    service_fee_timing: FeeTiming = FeeTiming.PER_PERIOD
    deposit: int = 0
    deposit_refundable: bool = True

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("principal", _int(self.principal, "principal", "本金（分）", low=1, high=MAX_PRINCIPAL))
        put("annual_rate", _rate(self.annual_rate, "annual_rate", "年利率"))
        put("periods", _int(self.periods, "periods", "期数", low=1, high=MAX_PERIODS))
        put("method", coerce_enum(RepaymentMethod, self.method, "method", "还款方式"))
        put("interest_method", coerce_enum(InterestMethod, self.interest_method, "interest_method", "计息方式"))
        put("interest_period", coerce_enum(InterestPeriod, self.interest_period, "interest_period", "计息周期"))
        put("days_in_year", coerce_enum(DayBasis, self.days_in_year, "days_in_year", "年计息天数"))
        put("rounding", coerce_enum(Rounding, self.rounding, "rounding", "舍入方式"))
        put("service_fee_timing", coerce_enum(FeeTiming, self.service_fee_timing, "service_fee_timing", "服务费收取方式"))
        if isinstance(self.start_date, datetime) or not isinstance(self.start_date, date):
            raise ValidationFailed("放款日期必须是日期（年-月-日）", field="start_date")
        put("digits", _int(self.digits, "digits", "货币小数位数", low=0, high=2))
        put("installment_multiple", _int(self.installment_multiple, "installment_multiple", "还款额取整单位（分）",
                                         low=1, high=self.principal))
        put("grace_principal", _int(self.grace_principal, "grace_principal", "只还息宽限期数", low=0))
        put("grace_interest", _int(self.grace_interest, "grace_interest", "免还款宽限期数", low=0))
        put("service_fee_rate", _rate(self.service_fee_rate, "service_fee_rate", "服务费率"))
        put("service_fee_amount", _int(self.service_fee_amount, "service_fee_amount", "固定服务费（分）",
                                       low=0, high=MAX_PRINCIPAL))
        put("deposit", _int(self.deposit, "deposit", "保证金（分）", low=0, high=MAX_PRINCIPAL))
        if not isinstance(self.deposit_refundable, bool):
            raise ValidationFailed("保证金是否退还必须是是/否", field="deposit_refundable")
        self._check_combinations()

    def _check_combinations(self) -> None:
        multiple = self.installment_multiple
        if multiple != 1 and multiple % self.quantum:
            raise ValidationFailed(
                f"还款额取整单位须是最小货币单位（{self.quantum} 分）的整数倍", field="installment_multiple")
        if multiple > self.quantum and self.method in (RepaymentMethod.INTEREST_FIRST, RepaymentMethod.BULLET):
            raise ValidationFailed(f"{self.method.label}不支持还款额取整", field="installment_multiple")
        grace = self.grace_interest + self.grace_principal
        if self.method is RepaymentMethod.BULLET and grace:
            raise ValidationFailed("一次性还本付息不设宽限期", field="grace_principal")
        if grace >= self.periods and self.method is not RepaymentMethod.BULLET:
            raise ValidationFailed(
                f"宽限期（{grace} 期）须少于总期数（{self.periods} 期），至少留一期还本", field="grace_principal")
        if self.upfront_fee + self.deposit >= self.principal:
            raise ValidationFailed("前置服务费与保证金之和须小于本金", field="deposit")

    # --- derived figures ---------------------------------------------------------------------------

    @property
    def quantum(self) -> int:
        """The smallest currency unit in fen (1 for 2 digits, 10 for 1, 100 for 0)."""
        return 10 ** (2 - self.digits)

    @property
    def multiple(self) -> int:
        """The effective installment multiple in fen."""
        return max(self.installment_multiple, self.quantum)

    @property
    def monthly_rate(self) -> Fraction:
        return Fraction(self.annual_rate) / 12

    @property
    def amortising_periods(self) -> int:
        return self.periods - self.grace_interest - self.grace_principal

    @property
    def fee_per_charge(self) -> int:
        """The service fee of one charge (per period or upfront), rounded once."""
        rated = self.principal * Fraction(self.service_fee_rate)
        return round_to(rated, self.rounding, self.quantum) + self.service_fee_amount

    @property
    def upfront_fee(self) -> int:
        return self.fee_per_charge if self.service_fee_timing is FeeTiming.UPFRONT else 0

    @property
    def periodic_fee(self) -> int:
        return self.fee_per_charge if self.service_fee_timing is FeeTiming.PER_PERIOD else 0
