"""The payment package's refusals: a stable code for programs, a Chinese message for people."""

from __future__ import annotations

from core.errors import AppError, Conflict, NotFound, ValidationFailed


class NotificationRejected(AppError):
    """A provider notification we refuse: nothing is stored. WeChat Pay retries it later."""

    code = "payment_notification_rejected"
    status = 401
    message = "支付通知验签失败"


class PaymentInvalid(ValidationFailed):
    code = "payment_invalid"
    message = "支付请求不正确"


class OrderNotFound(NotFound):
    code = "payment_order_not_found"
    message = "支付订单不存在"


class OrderStateConflict(Conflict):
    code = "payment_order_state"
    message = "支付订单当前状态不允许此操作"


class OpenAttemptExists(OrderStateConflict):
    """Another request opened an attempt for the same obligation meanwhile (the database decided)."""

    code = "payment_attempt_open"
    message = "该应付事项已有进行中的支付"


class ProviderUnavailable(AppError):
    """The provider could not be reached or answered something we cannot read: the outcome is unknown."""

    code = "payment_provider_unavailable"
    status = 502
    message = "支付渠道暂时不可用，请稍后再试"


class ProviderRefused(AppError):
    """The provider answered with a business refusal (bad parameters, insufficient funds, closed order …)."""

    code = "payment_provider_refused"
    status = 409
    message = "支付渠道拒绝了请求"


class PurposeUnknown(AppError):
    code = "payment_purpose_unknown"
    status = 500
    message = "未登记的支付用途"


class AuthorizationMissing(Conflict):
    code = "withholding_authorization_missing"
    message = "客户没有有效的代扣授权"


class AuthorizationInvalid(ValidationFailed):
    code = "withholding_authorization_invalid"
    message = "代扣授权信息不正确"
