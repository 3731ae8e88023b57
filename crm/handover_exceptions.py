"""Refusals of the handover area (离职继承 / 在职继承)."""

from __future__ import annotations

from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


class HandoverCaseNotFound(NotFound):
    code = "handover_case_not_found"
    message = "交接单不存在或不在您的数据范围内"


class HandoverNotAllowed(PermissionDenied):
    code = "handover_not_allowed"
    message = "只有经理或系统管理员可以办理客户交接"


class HandoverCaseClosed(Conflict):
    code = "handover_case_closed"
    message = "该交接单已完成或已取消，不能再执行"


class HandoverRefused(Conflict):
    """The plan cannot be carried out as a whole (a successor departed, capacity, …): nothing was changed."""

    code = "handover_refused"
    message = "交接无法执行，未做任何改动"


class HandoverInvalid(ValidationFailed):
    code = "handover_invalid"
    message = "交接方案不正确"


class TransferNotFound(NotFound):
    code = "wecom_transfer_not_found"
    message = "企业微信转接记录不存在"


class IllegalTransferTransition(Conflict):
    code = "wecom_transfer_illegal_transition"
    message = "企业微信转接状态不允许这样变更"


class TransferLimitReached(Conflict):
    code = "wecom_transfer_limit"
    message = "该客户 90 天内已在职转接 2 次，企业微信不允许再次转接"
