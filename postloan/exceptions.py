"""Refusals of collections (stable codes, Chinese messages). ``collection_invalid`` kept from lending."""

from __future__ import annotations

from core.errors import Conflict, NotFound, ValidationFailed


class CollectionInvalid(ValidationFailed):
    code = "collection_invalid"
    message = "催收记录不正确"


class CaseNotFound(NotFound):
    code = "collection_case_not_found"
    message = "催收案件不存在或不在您的范围内"


class CaseTaken(Conflict):
    code = "collection_case_taken"
    message = "该案件已被其他催收员领取"


class CaseClosed(Conflict):
    code = "collection_case_closed"
    message = "该案件已结案"


class RuleInvalid(ValidationFailed):
    code = "collection_rule_invalid"
    message = "分案规则不正确"


class ScriptInvalid(ValidationFailed):
    code = "collection_script_invalid"
    message = "话术不正确"
