"""Refusals of the product catalogue, matching and risk rules (stable codes, Chinese messages)."""

from __future__ import annotations

from core.errors import Conflict, NotFound, ValidationFailed


class FunderNotFound(NotFound):
    code = "funder_not_found"
    message = "资方不存在"


class FunderNameTaken(Conflict):
    code = "funder_name_taken"
    message = "资方名称已存在"


class ProductNotFound(NotFound):
    code = "product_not_found"
    message = "产品不存在"


class ProductVersionNotFound(NotFound):
    code = "product_version_not_found"
    message = "产品版本不存在"


class ProductCodeTaken(Conflict):
    code = "product_code_taken"
    message = "产品编码已存在"


class ProductInactive(Conflict):
    code = "product_inactive"
    message = "产品已停用"


class InvalidProductTerms(ValidationFailed):
    code = "invalid_product_terms"
    message = "产品条款不正确"


class AmountOutOfRange(ValidationFailed):
    code = "amount_out_of_range"
    message = "金额不在产品允许的范围内"


class TermNotAllowed(ValidationFailed):
    code = "term_not_allowed"
    message = "期限不在产品允许的范围内"


class RuleSetNotFound(NotFound):
    code = "rule_set_not_found"
    message = "风控规则集不存在"


class InvalidRuleExpression(ValidationFailed):
    code = "invalid_rule_expression"
    message = "规则表达式不正确"


class InvalidRule(ValidationFailed):
    code = "invalid_rule"
    message = "规则不正确"
