"""What a staff password must be (issue 20): at least :data:`MIN_LENGTH` characters, not a password
guessers try first (:mod:`core.common_passwords`, with the pinyin ones), not one of those words with
digits or symbols stuck on, not digits only, not mostly one character, and not containing the login name.

:func:`problem` answers the first rule a password breaks, in Chinese, or ``None``.
"""

from __future__ import annotations

import re

from core.common_passwords import COMMON

MIN_LENGTH = 10
RULES = f"密码至少 {MIN_LENGTH} 位，不能是常见密码（如 woaini1314、Password123），也不能包含登录名"

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
_AFFIX = re.compile(r"^[\d\W_]*(.*?)[\d\W_]*$")


def _cores(password: str) -> set[str]:
    """The password as a guesser's dictionary sees it: lower-cased, with and without leet, affixes off."""
    lowered = password.lower()
    cores = {lowered, lowered.translate(_LEET)}
    for text in list(cores):
        match = _AFFIX.match(text)
        if match and match.group(1):
            cores.add(match.group(1))
    return cores


def problem(password: str, username: str | None = None) -> str | None:
    if len(password) < MIN_LENGTH:
        return f"密码至少 {MIN_LENGTH} 位"
    if password.isdigit():
        return "密码不能只有数字（生日、手机号、5201314 这类数字最先被猜）"
    if len(set(password.lower())) < 4:
        return "密码不能只由一两个字符反复组成"
    if _cores(password) & COMMON:
        return "该密码太常见，容易被猜中，请换一个（不要用 woaini1314、Password123 这类密码）"
    name = (username or "").strip().lower()
    if len(name) >= 3 and name in password.lower():
        return "密码不能包含登录名"
    return None
