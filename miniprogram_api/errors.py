"""Every error code the mini-program API answers with: one table, for the code and for the docs.

An answer that is not a success is ``{"code": <MpErrorCode>, "message": <Chinese>, "details"?: {...}}``.
The exception classes (``miniprogram_api.exceptions``, ``lending.consent_exceptions``) and every ``code=``
this package raises take their code from :class:`MpErrorCode`; :data:`ERRORS` gives each code its HTTP
status and default Chinese message (a raise may say more precisely what is wrong). The table in
``docs/miniprogram-api.md`` is this one (``tests/test_mp_openapi.py`` checks both ways).

Refusals of the domains behind the API (a product's amount range, a visit slot taken …) pass through with
their own codes and Chinese messages; :data:`PASSED_THROUGH` names the usual ones.
"""

from __future__ import annotations

from enum import StrEnum

from core.errors import AppError, ServiceUnavailable
from crm.exceptions import CustomerBlacklisted
from crm.work_exceptions import VisitConflict, WorkValidation
from lending.product_exceptions import AmountOutOfRange, ProductNotFound, TermNotAllowed
from lending.servicing.exceptions import LoanClosed, PrepaymentRefused
from payments.exceptions import ProviderUnavailable

__all__ = ["ERRORS", "PASSED_THROUGH", "MpErrorCode"]


class MpErrorCode(StrEnum):
    # request and session
    VALIDATION_FAILED = "validation_failed"
    MP_VALIDATION_FAILED = "mp_validation_failed"
    SESSION_INVALID = "mp_session_invalid"
    RATE_LIMITED = "rate_limited"
    # login and phone binding
    LOGIN_CODE_USED = "mp_login_code_used"
    LOGIN_CODE_INVALID = "mp_login_code_invalid"
    WECHAT_API_ERROR = "wechat_api_error"
    PHONE_DECRYPT_FAILED = "mp_phone_decrypt_failed"
    PHONE_CODE_INVALID = "mp_phone_code_invalid"
    PHONE_WRONG_APP = "mp_phone_wrong_app"
    PHONE_DATA_MALFORMED = "mp_phone_data_malformed"
    PHONE_BINDING_REFUSED = "mp_phone_binding_refused"
    ID_LAST4_REQUIRED = "mp_id_last4_required"
    ID_LAST4_WRONG = "mp_id_last4_wrong"
    ID_NUMBER_TAKEN = "mp_id_number_taken"
    # consent
    CONSENT_REFUSED = "mp_consent_refused"
    CONSENT_DOCUMENT_NOT_FOUND = "mp_consent_document_not_found"
    CONSENT_MISSING = "mp_consent_missing"
    CONSENT_DOCUMENT_MISSING = "mp_consent_document_missing"
    # applications and uploads
    DRAFT_NOT_FOUND = "mp_draft_not_found"
    DRAFT_SUBMITTED = "mp_draft_submitted"
    APPLICATION_INCOMPLETE = "mp_application_incomplete"
    UPLOAD_REFUSED = "mp_upload_refused"
    UPLOAD_TOO_LARGE = "mp_upload_too_large"
    UPLOAD_NOT_IMAGE = "mp_upload_not_image"
    UPLOAD_NOT_FOUND = "mp_upload_not_found"
    UPLOAD_CORRUPT = "mp_upload_corrupt"
    UPLOAD_TAMPERED = "mp_upload_tampered"
    PII_KEY_UNKNOWN = "pii_key_unknown"
    # visits
    DEPARTMENT_NOT_FOUND = "department_not_found"
    # loans, bills and payments
    LOAN_NOT_FOUND = "mp_loan_not_found"
    NOTHING_DUE = "mp_nothing_due"
    AGREEMENT_NOT_FOUND = "mp_agreement_not_found"
    SETTLEMENT_NOT_FOUND = "mp_settlement_not_found"
    PAYMENT_NOT_FOUND = "mp_payment_not_found"
    AUTHORIZATION_NOT_FOUND = "mp_authorization_not_found"
    # referral
    NO_COMMISSION = "mp_no_commission"


C = MpErrorCode
ERRORS: dict[MpErrorCode, tuple[int, str]] = {
    C.VALIDATION_FAILED: (422, "请求格式不正确（逐个字段说明，见 details.errors）"),
    C.MP_VALIDATION_FAILED: (422, "输入不正确（message 说明哪一项，details.field 为字段名）"),
    C.SESSION_INVALID: (401, "登录已失效，请重新登录"),
    C.RATE_LIMITED: (429, "操作过于频繁，请稍后再试（响应头 Retry-After 为秒数）"),
    C.LOGIN_CODE_USED: (400, "登录凭证已使用，请重新登录"),
    C.LOGIN_CODE_INVALID: (400, "登录凭证无效或已过期，请重新登录"),
    C.WECHAT_API_ERROR: (502, "微信服务暂时不可用，请稍后再试"),
    C.PHONE_DECRYPT_FAILED: (400, "手机号数据解密失败，请重新授权"),
    C.PHONE_CODE_INVALID: (400, "手机号授权码无效或已使用，请重新授权"),
    C.PHONE_WRONG_APP: (400, "手机号数据不属于本小程序"),
    C.PHONE_DATA_MALFORMED: (400, "加密数据格式不正确"),
    C.PHONE_BINDING_REFUSED: (409, "该手机号无法绑定到当前账户，请联系客服"),
    C.ID_LAST4_REQUIRED: (409, "该手机号已有申请或贷款记录，为确认是您本人，请输入该客户身份证号的后四位"),
    C.ID_LAST4_WRONG: (400, "身份证号后四位不正确"),
    C.ID_NUMBER_TAKEN: (409, "该身份证号已登记在另一位客户名下，请联系客服"),
    C.CONSENT_REFUSED: (422, "协议操作不正确（如同意的不是最新版本、撤回尚未同意的协议）"),
    C.CONSENT_DOCUMENT_NOT_FOUND: (404, "协议不存在"),
    C.CONSENT_MISSING: (409, "请先阅读并同意相关协议（details.document_ids 为需同意的协议）"),
    C.CONSENT_DOCUMENT_MISSING: (409, "协议尚未发布，暂不能提交申请，请联系客服"),
    C.DRAFT_NOT_FOUND: (404, "申请不存在"),
    C.DRAFT_SUBMITTED: (409, "该申请已提交，不能再修改"),
    C.APPLICATION_INCOMPLETE: (422, "申请资料不完整（details.missing 为缺少的项目）"),
    C.UPLOAD_REFUSED: (422, "上传的文件不符合要求"),
    C.UPLOAD_TOO_LARGE: (422, "文件过大：最大 5 MB"),
    C.UPLOAD_NOT_IMAGE: (422, "只能上传 JPG 或 PNG 图片"),
    C.UPLOAD_NOT_FOUND: (404, "文件不存在"),
    C.UPLOAD_CORRUPT: (500, "文件格式不正确"),
    C.UPLOAD_TAMPERED: (500, "文件校验失败"),
    C.PII_KEY_UNKNOWN: (500, "密钥不存在，无法解密"),
    C.DEPARTMENT_NOT_FOUND: (404, "请选择可预约的网点"),
    C.LOAN_NOT_FOUND: (404, "贷款不存在"),
    C.NOTHING_DUE: (404, "这笔贷款今天没有应还金额"),
    C.AGREEMENT_NOT_FOUND: (404, "协议不存在"),
    C.SETTLEMENT_NOT_FOUND: (404, "结算不存在"),
    C.PAYMENT_NOT_FOUND: (404, "支付记录不存在"),
    C.AUTHORIZATION_NOT_FOUND: (404, "代扣授权不存在"),
    C.NO_COMMISSION: (409, "您还没有可提现的佣金"),
}

# Refusals of the domains behind the API that the mini-program commonly meets (they keep their own codes).
PASSED_THROUGH: tuple[type[AppError], ...] = (
    ProductNotFound, AmountOutOfRange, TermNotAllowed, CustomerBlacklisted, WorkValidation, VisitConflict,
    LoanClosed, PrepaymentRefused, ProviderUnavailable, ServiceUnavailable,
)
