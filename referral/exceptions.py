"""Refusals of the referral domain: a stable code for programs, a Chinese message for people."""

from __future__ import annotations

from core.errors import AppError, Conflict, NotFound, PermissionDenied, ValidationFailed


class ReferralError(AppError):
    code = "referral_error"
    message = "推荐操作失败"


class ReferrerNotFound(NotFound):
    code = "referrer_not_found"
    message = "推荐人不存在"


class ReferrerDisabled(ReferralError):
    code = "referrer_disabled"
    status = 409
    message = "推荐人已停用"


class SelfReferral(ReferralError):
    code = "self_referral"
    status = 409
    message = "不能推荐自己"


class ReferralLoop(ReferralError):
    code = "referral_loop"
    status = 409
    message = "推荐关系形成循环（例如 A 推荐 B、B 又推荐 A），已拒绝"


class AttributionLocked(Conflict):
    code = "attribution_locked"
    message = "该客户的推荐归属仍在锁定期内，不能改绑"


class InvalidReferrer(ValidationFailed):
    code = "invalid_referrer"
    message = "推荐人信息不正确"


class RuleNotFound(NotFound):
    code = "commission_rule_not_found"
    message = "佣金规则不存在"


class InvalidRule(ValidationFailed):
    code = "invalid_commission_rule"
    message = "佣金规则不正确"


class OverlappingTiers(InvalidRule):
    code = "overlapping_tiers"
    message = "阶梯区间重叠"


class EntryNotFound(NotFound):
    code = "commission_entry_not_found"
    message = "佣金流水不存在"


class AlreadyReversed(Conflict):
    code = "already_reversed"
    message = "该笔佣金已冲回，不能重复冲回"


class NotReversible(ReferralError):
    code = "not_reversible"
    status = 409
    message = "只有计提的佣金可以冲回"


class InsufficientBalance(ReferralError):
    code = "insufficient_balance"
    status = 409
    message = "可提现余额不足"


class InvalidAmount(ValidationFailed):
    code = "invalid_amount"
    message = "金额必须大于 0"


class WithdrawalNotFound(NotFound):
    code = "withdrawal_not_found"
    message = "提现申请不存在"


class WithdrawalStateError(Conflict):
    code = "withdrawal_state"
    message = "提现申请状态已变化，请刷新后重试"


class PayoutBatchNotFound(NotFound):
    code = "payout_batch_not_found"
    message = "发放批次不存在"


class PayoutStateError(Conflict):
    code = "payout_state"
    message = "发放批次状态已变化，请刷新后重试"


class NotAllowed(PermissionDenied):
    code = "referral_not_allowed"
    message = "您的角色无权执行此推荐佣金操作"
