"""Refusals of the mini-program channel (stable codes, Chinese messages)."""

from __future__ import annotations

from core.errors import AppError, Conflict, ExternalServiceError, NotAuthenticated, NotFound, ValidationFailed

__all__ = [
    "ApplicationIncomplete", "ConsentDocumentNotFound", "ConsentMissing", "DraftNotFound",
    "DraftSubmitted", "IdLast4Required", "IdLast4Wrong", "InvalidSession", "LoanNotFound", "LoginCodeInvalid", "LoginCodeUsed", "MpValidation", "PhoneBindingRefused",
    "PhoneDecryptFailed", "UploadRefused", "UploadNotFound", "WechatApiError",
]


class MpValidation(ValidationFailed):
    code = "mp_validation_failed"


class InvalidSession(NotAuthenticated):
    code = "mp_session_invalid"
    message = "登录已失效，请重新登录"


class LoginCodeUsed(AppError):
    code = "mp_login_code_used"
    status = 400
    message = "登录凭证已使用，请重新登录"


class LoginCodeInvalid(AppError):
    code = "mp_login_code_invalid"
    status = 400
    message = "登录凭证无效或已过期，请重新登录"


class WechatApiError(ExternalServiceError):
    code = "wechat_api_error"
    message = "微信服务暂时不可用，请稍后再试"


class PhoneDecryptFailed(AppError):
    code = "mp_phone_decrypt_failed"
    status = 400
    message = "手机号数据解密失败，请重新授权"


class PhoneBindingRefused(Conflict):
    code = "mp_phone_binding_refused"
    message = "该手机号无法绑定到当前账户，请联系客服"


class IdLast4Required(AppError):
    """The phone belongs to a customer with applications or loans: prove it is you (二次放号, re-issued numbers)."""

    code = "mp_id_last4_required"
    status = 409
    message = "该手机号已有申请或贷款记录，为确认是您本人，请输入该客户身份证号的后四位"


class IdLast4Wrong(AppError):
    code = "mp_id_last4_wrong"
    status = 400
    message = "身份证号后四位不正确"


class ConsentDocumentNotFound(NotFound):
    code = "mp_consent_document_not_found"
    message = "协议不存在"


class ConsentMissing(AppError):
    code = "mp_consent_missing"
    status = 409
    message = "请先阅读并同意相关协议"


class DraftNotFound(NotFound):
    code = "mp_draft_not_found"
    message = "申请不存在"


class DraftSubmitted(Conflict):
    code = "mp_draft_submitted"
    message = "该申请已提交，不能再修改"


class ApplicationIncomplete(ValidationFailed):
    code = "mp_application_incomplete"
    message = "申请资料不完整"


class UploadRefused(ValidationFailed):
    code = "mp_upload_refused"
    message = "上传的文件不符合要求"


class UploadNotFound(NotFound):
    code = "mp_upload_not_found"
    message = "文件不存在"


class LoanNotFound(NotFound):
    code = "mp_loan_not_found"
    message = "贷款不存在"
