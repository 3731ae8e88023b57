"""Refusals of the telephony package (each a clear Chinese message and a stable code)."""

from __future__ import annotations

from core.errors import AppError


class CallRefused(AppError):
    code = "call_refused"
    status = 409
    message = "无法拨打"


class DoNotCallRefused(CallRefused):
    code = "call_do_not_call"
    message = "该客户已登记为勿扰（拒绝来电），不能拨打"


class OutsideCallHours(CallRefused):
    code = "call_outside_hours"
    message = "当前不在允许外呼的时段内，不能拨打"


class NoPhoneNumber(CallRefused):
    code = "call_no_phone"
    message = "该客户没有登记手机号，无法拨打"


class CallSubjectNotFound(AppError):
    code = "call_subject_not_found"
    status = 404
    message = "要拨打的客户不存在"


class CallbackRejected(AppError):
    """A callback that failed verification: nothing stored, the provider is told why."""

    code = "telephony_callback_rejected"
    status = 401
    message = "回调签名校验失败"

    def __init__(self, message: str | None = None, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message, code=code)
        if status:
            self.status = status


class ProviderUnavailable(AppError):
    code = "telephony_provider_unavailable"
    status = 503
    message = "呼叫中心暂时无法连接，请稍后再试"
