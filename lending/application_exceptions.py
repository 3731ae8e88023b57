"""Refusals of the application workflow, contracts and disbursement (stable codes, Chinese messages)."""

from __future__ import annotations

from core.errors import Conflict, NotFound, ValidationFailed


class ApplicationNotFound(NotFound):
    code = "application_not_found"
    message = "申请不存在"


class ApplicationAlreadyOpen(Conflict):
    code = "application_already_open"
    message = "该客户在此产品下已有进行中的申请"


class ApplicationClosed(Conflict):
    code = "application_closed"
    message = "申请已结束，不能再操作"


class TransitionRefused(Conflict):
    code = "transition_refused"
    message = "当前节点不允许此操作"


class StaleNode(Conflict):
    code = "stale_node"
    message = "申请已被他人处理，请刷新页面后重试"


class RequirementsMissing(ValidationFailed):
    code = "requirements_missing"
    message = "本节点的必填资料不完整"


class InvalidWorkflow(ValidationFailed):
    code = "invalid_workflow"
    message = "流程配置不正确"


class ReasonRequired(ValidationFailed):
    code = "reason_required"
    message = "请填写原因"


class ContractNotFound(NotFound):
    code = "contract_not_found"
    message = "合同不存在"


class ContractAlreadySigned(Conflict):
    code = "contract_already_signed"
    message = "合同已签署，不能重复签署"


class ContractNotSigned(Conflict):
    code = "contract_not_signed"
    message = "合同尚未签署"


class AlreadyDisbursed(Conflict):
    code = "already_disbursed"
    message = "该合同已放款，不能重复放款"


class FunderReferenceTaken(Conflict):
    code = "funder_reference_taken"
    message = "资方放款流水号已被使用"


class DisbursementInvalid(ValidationFailed):
    code = "disbursement_invalid"
    message = "放款信息不正确"


class ContractIncomplete(Conflict):
    """A contract lacks what signing should have given it (start date, parties): refused, never guessed."""

    code = "contract_incomplete"
    message = "合同资料不完整，无法继续，请联系系统管理员"


class LoanNotFound(NotFound):
    code = "loan_not_found"
    message = "贷款不存在"


class FileRefused(ValidationFailed):
    code = "application_file_refused"
    message = "文件不能保存"


class FileNotFound(NotFound):
    code = "application_file_not_found"
    message = "文件不存在"
