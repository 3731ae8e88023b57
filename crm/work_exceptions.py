"""Refusals of the work area: follow-ups, tasks, co-handlers, visits, automation rules."""

from __future__ import annotations

from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

__all__ = [
    "CollaboratorExists", "CustomerNotWorkable", "InvalidRule", "RuleNotFound", "TaskNotFound", "VisitConflict",
    "VisitNotFound", "VisitStateError", "WorkForbidden", "WorkValidation",
]


class WorkValidation(ValidationFailed):
    code = "work_validation_failed"


class CustomerNotWorkable(Conflict):
    code = "customer_not_workable"
    message = "该客户不在您的私海或协作范围内，请先领取或分配后再跟进"


class TaskNotFound(NotFound):
    code = "task_not_found"
    message = "待办不存在或不在您的数据范围内"


class CollaboratorExists(Conflict):
    code = "collaborator_exists"
    message = "该员工已是此客户的协作人"


class WorkForbidden(PermissionDenied):
    code = "work_forbidden"
    message = "只有负责人或其上级可以执行此操作"


class VisitNotFound(NotFound):
    code = "visit_not_found"
    message = "预约不存在或不在您的数据范围内"


class VisitConflict(Conflict):
    code = "visit_double_booked"
    message = "该客户在这个时间段已有预约，请勿重复预约"


class VisitStateError(Conflict):
    code = "visit_state"
    message = "该预约的状态不允许此操作"


class RuleNotFound(NotFound):
    code = "rule_not_found"
    message = "自动化规则不存在"


class InvalidRule(ValidationFailed):
    code = "invalid_rule"
    message = "自动化规则不正确"
