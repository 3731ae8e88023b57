"""Request validation errors (pydantic's) in Chinese, with a stable code: the 422 each channel sends.

A channel gives its own field labels; the kernel's composition root (:mod:`core.web`) picks the
labels by URL prefix, so every JSON API answers a malformed request the same way:
``{"code": "validation_failed", "message": "金额应为整数；…", "details": {"errors": [{"field", "message"}]}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CODE = "validation_failed"

_MESSAGES = {
    "missing": "不能为空",
    "string_type": "应为文本（金额请以字符串填写，如 \"10000.00\"）",
    "int_type": "应为整数", "int_parsing": "应为整数", "int_from_float": "应为整数",
    "bool_type": "应为 true 或 false", "bool_parsing": "应为 true 或 false",
    "list_type": "应为列表", "enum": "不是可选的值", "literal_error": "不是可选的值",
    "date_type": "应为日期", "date_parsing": "日期格式不正确（如 2026-01-01）",
    "date_from_datetime_parsing": "日期格式不正确（如 2026-01-01）",
    "datetime_type": "应为时间", "datetime_parsing": "时间格式不正确（如 2026-01-01T10:00:00+08:00）",
    "datetime_from_date_parsing": "时间格式不正确（如 2026-01-01T10:00:00+08:00）",
    "timezone_aware": "时间必须带时区（如 +08:00）",
    "string_too_long": "过长", "string_too_short": "过短", "string_pattern_mismatch": "格式不正确",
    "too_long": "项目过多", "too_short": "项目过少", "json_invalid": "不是有效的 JSON",
    "model_attributes_type": "格式不正确", "dict_type": "格式不正确", "extra_forbidden": "是未知字段",
    "greater_than": "必须大于 {gt}", "greater_than_equal": "不能小于 {ge}",
    "less_than": "必须小于 {lt}", "less_than_equal": "不能大于 {le}",
}
_LOCATIONS = ("body", "query", "path", "header", "form", "cookie")


def translate(errors: list[dict[str, Any]], labels: Mapping[str, str]) -> list[dict[str, str]]:
    """One ``{"field", "message"}`` per error; the field is the innermost named location."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in _LOCATIONS and not isinstance(p, int)]
        field = loc[-1] if loc else "body"
        template = _MESSAGES.get(err.get("type", ""))
        if template is None:
            text = "格式不正确"
        else:
            try:
                text = template.format(**(err.get("ctx") or {}))
            except (KeyError, IndexError):
                text = template
        out.append({"field": field, "message": f"{labels.get(field, field)}{text}"})
    return out


def payload(errors: list[dict[str, Any]], labels: Mapping[str, str]) -> dict[str, Any]:
    translated = translate(errors, labels)
    message = "；".join(e["message"] for e in translated[:5]) or "请求格式不正确"
    return {"code": CODE, "message": message, "details": {"errors": translated}}
