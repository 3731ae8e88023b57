"""Refusals of servicing (贷后): repayments, reversals, waivers (stable codes, Chinese messages)."""

from __future__ import annotations

from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


class LoanNotFound(NotFound):
    code = "loan_not_found"
    message = "贷款不存在"


class RepaymentNotFound(NotFound):
    code = "repayment_not_found"
    message = "还款记录不存在"


class RepaymentInvalid(ValidationFailed):
    code = "repayment_invalid"
    message = "还款信息不正确"


class Overpayment(ValidationFailed):
    code = "overpayment"
    message = "还款金额超过应还金额"


class ReferenceTaken(Conflict):
    code = "repayment_reference_taken"
    message = "该流水号已登记过还款"


class LoanClosed(Conflict):
    code = "loan_closed"
    message = "贷款已结清，不能再登记还款"


class AlreadyReversed(Conflict):
    code = "already_reversed"
    message = "该笔还款已冲正，不能重复冲正"


class ReversalRefused(Conflict):
    code = "reversal_refused"
    message = "不能冲正这条记录"


class PrepaymentRefused(ValidationFailed):
    code = "prepayment_refused"
    message = "不能办理提前还款"


class WaiverInvalid(ValidationFailed):
    code = "waiver_invalid"
    message = "减免申请不正确"


class WaiverAboveLimit(PermissionDenied):
    code = "waiver_above_limit"
    message = "减免金额超过审批额度"


class WaiverNotFound(NotFound):
    code = "waiver_not_found"
    message = "减免申请不存在"


class WaiverDecided(Conflict):
    code = "waiver_decided"
    message = "该减免申请已审批"


class RefundRefused(Conflict):
    code = "refund_refused"
    message = "不能退款"


class RestructureInvalid(ValidationFailed):
    code = "restructure_invalid"
    message = "展期/重组申请不正确"


class RestructureDecided(Conflict):
    code = "restructure_decided"
    message = "展期/重组申请已审批"


class RestructureNotFound(NotFound):
    code = "restructure_not_found"
    message = "没有这条展期/重组申请"


class BookingInconsistent(Conflict):
    """An internal check of a booking failed (the split of a payment does not add up to it, a paid
    installment would be dropped): nothing is written. An explicit check, not an ``assert``, which
    ``python -O`` would remove."""

    code = "booking_inconsistent"
    message = "记账校验未通过，未做任何更改，请联系管理员"
