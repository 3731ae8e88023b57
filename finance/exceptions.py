"""The finance center's refusals: a stable code for programs, a Chinese message for people."""

from __future__ import annotations

from core.errors import AppError, Conflict, NotFound, ValidationFailed


class FinanceInvalid(ValidationFailed):
    code = "finance_invalid"


class AmountInvalid(ValidationFailed):
    code = "amount_invalid"
    message = "金额不正确"


class Unbalanced(ValidationFailed):
    code = "entry_unbalanced"
    message = "借贷不平衡"


class PeriodClosed(AppError):
    code = "period_closed"
    status = 409
    message = "该月份已月结，不能记账"


class AlreadyReversed(Conflict):
    code = "already_reversed"
    message = "该凭证已冲销"


class StateConflict(Conflict):
    """Somebody else moved the record first, or it is not in a state that allows the action."""

    code = "state_conflict"


class RecordNotFound(NotFound):
    code = "finance_not_found"
    message = "记录不存在或不在您的数据范围内"


class AprAboveCap(ValidationFailed):
    code = "apr_above_cap"
    message = "综合年化成本超过上限"
