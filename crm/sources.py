"""One vocabulary of customer sources (来源).

``Customer.source`` is free text: a channel's code written by the system (``miniprogram``, ``wecom``,
``import``, ``manual``, ``api``) or a label typed by people and import files (抖音, 转介绍, 小程序 …).
A person always sees the Chinese label, and a code and its label are one source: the filter drop-down
lists it once and filtering by it finds both spellings.
"""

from __future__ import annotations

from collections.abc import Iterable

# The codes the system writes, and the label a person sees.
SOURCE_LABELS: dict[str, str] = {
    "manual": "手工录入", "import": "批量导入", "wecom": "企业微信", "miniprogram": "小程序", "api": "接口录入",
    "console": "控制台录入", "referral": "转介绍", "channel_code": "渠道活码",
}
# Spellings people and files use for the same sources.
_ALIASES: dict[str, str] = {"企微": "企业微信", "微信小程序": "小程序", "导入": "批量导入", "手动录入": "手工录入",
                            "手工": "手工录入"}


def label(source: str | None) -> str:
    """The Chinese label of a stored source ("miniprogram" -> 小程序); free text stays as typed."""
    if not source:
        return "—"
    text = source.strip()
    return SOURCE_LABELS.get(text.lower(), _ALIASES.get(text, text))


def spellings(value: str) -> list[str]:
    """Every stored spelling of the source ``value`` names (a code or a label): for ``source IN (...)``."""
    wanted = label(value)
    out = {value.strip(), wanted}
    out.update(code for code, text in SOURCE_LABELS.items() if text == wanted)
    out.update(alias for alias, text in _ALIASES.items() if text == wanted)
    return sorted(out)


def merged_labels(values: Iterable[str]) -> list[str]:
    """Distinct labels of stored values, in first-seen order (a code and its label listed once)."""
    seen: dict[str, None] = {}
    for value in values:
        if value:
            seen.setdefault(label(value), None)
    return list(seen)
