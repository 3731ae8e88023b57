"""Refusals of the public pool (公海) and of allocation. Each changes nothing."""

from __future__ import annotations

from core.errors import Conflict, PermissionDenied, ValidationFailed


class ClaimLost(Conflict):
    code = "claim_lost"
    message = "该客户已被他人领取或已不在公海，请刷新后重试"


class DailyClaimCapReached(Conflict):
    code = "daily_claim_cap_reached"
    message = "今日领取次数已达上限"


class PrivateCapacityReached(Conflict):
    code = "private_capacity_reached"
    message = "私海客户数已达上限，请先跟进或释放部分客户"


class ClaimCooldown(Conflict):
    code = "claim_cooldown"
    message = "您刚释放过该客户，冷却期内不能再次领取"


class NotOwner(PermissionDenied):
    code = "not_owner"
    message = "只有客户的负责人或其上级可以释放该客户"


class NotInPool(Conflict):
    code = "not_in_pool"
    message = "该客户不在公海中"


class NotOwned(Conflict):
    code = "not_owned"
    message = "该客户当前没有负责人"


class InvalidPoolRule(ValidationFailed):
    code = "invalid_pool_rule"
    message = "规则设置不正确"
