"""Refusals of the mini-program channel (stable codes, Chinese messages)."""

from __future__ import annotations

from core.errors import AppError, Conflict, ExternalServiceError, NotAuthenticated, NotFound, ValidationFailed
from miniprogram_api.errors import MpErrorCode

__all__ = [
    "ApplicationIncomplete", "DraftNotFound",
    "DraftSubmitted", "IdLast4Required", "IdLast4Wrong", "InvalidSession", "LoanNotFound", "LoginCodeInvalid", "LoginCodeUsed", "MpValidation", "PhoneBindingRefused",
    "PhoneDecryptFailed", "UploadRefused", "UploadNotFound", "WechatApiError",
]


class MpValidation(ValidationFailed):
    code = MpErrorCode.MP_VALIDATION_FAILED


class InvalidSession(NotAuthenticated):
    code = MpErrorCode.SESSION_INVALID
    message = "登录已失效，请重新登录"


class LoginCodeUsed(AppError):
    code = MpErrorCode.LOGIN_CODE_USED
    status = 400
    message = "登录凭证已使用，请重新登录"


class LoginCodeInvalid(AppError):
    code = MpErrorCode.LOGIN_CODE_INVALID
    status = 400
    message = "登录凭证无效或已过期，请重新登录"


class WechatApiError(ExternalServiceError):
    code = MpErrorCode.WECHAT_API_ERROR
    message = "微信服务暂时不可用，请稍后再试"


class PhoneDecryptFailed(AppError):
    code = MpErrorCode.PHONE_DECRYPT_FAILED
    status = 400
    message = "手机号数据解密失败，请重新授权"


class PhoneBindingRefused(Conflict):
    code = MpErrorCode.PHONE_BINDING_REFUSED
    message = "该手机号无法绑定到当前账户，请联系客服"


class IdLast4Required(AppError):
    """The phone belongs to a customer with applications or loans: prove it is you (二次放号, re-issued numbers)."""

    code = MpErrorCode.ID_LAST4_REQUIRED
    status = 409
    message = "该手机号已有申请或贷款记录，为确认是您本人，请输入该客户身份证号的后四位"


class IdLast4Wrong(AppError):
    code = MpErrorCode.ID_LAST4_WRONG
    status = 400
    message = "身份证号后四位不正确"


class DraftNotFound(NotFound):
    code = MpErrorCode.DRAFT_NOT_FOUND
    message = "申请不存在"


class DraftSubmitted(Conflict):
    code = MpErrorCode.DRAFT_SUBMITTED
    message = "该申请已提交，不能再修改"


class ApplicationIncomplete(ValidationFailed):
    code = MpErrorCode.APPLICATION_INCOMPLETE
    message = "申请资料不完整"


class UploadRefused(ValidationFailed):
    code = MpErrorCode.UPLOAD_REFUSED
    message = "上传的文件不符合要求"


class UploadNotFound(NotFound):
    code = MpErrorCode.UPLOAD_NOT_FOUND
    message = "文件不存在"


class LoanNotFound(NotFound):
    code = MpErrorCode.LOAN_NOT_FOUND
    message = "贷款不存在"
