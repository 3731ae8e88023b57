"""Parse what a salesperson typed to the app: the command word, its arguments, and Chinese time
expressions for the next follow-up (明天10点, 后天, 3天后, 下周一 14:00, 11月25日 9:30,
2026-12-01 10:00), read in Asia/Shanghai against :func:`core.clock.now`.

Pure functions: no database, no WeCom. Refusals are :class:`CommandInvalid` with a Chinese message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from core import clock
from core.errors import ValidationFailed

DEFAULT_TIME = time(9, 0)  # a date without a time of day: the start of the working day
MAX_INPUT = 1200

# command word -> canonical name; "今日" and "提醒" are the same list.
ALIASES: dict[str, str] = {
    "查": "lookup", "查询": "lookup", "找": "lookup",
    "跟进": "followup",
    "标签": "tag", "打标签": "tag",
    "去标签": "untag", "删标签": "untag", "移除标签": "untag",
    "领取": "claim",
    "提醒": "reminders", "今日": "reminders", "今天": "reminders",
    "进件": "apply",
    "帮助": "help", "help": "help", "?": "help", "？": "help", "菜单": "help",
}
# Longest first, so "去标签" wins over "标签" when the words are written without a space.
_WORDS = sorted(ALIASES, key=len, reverse=True)

TIME_HELP = "明天10点、后天、3天后、下周一 14:00、11月25日 9:30、2026-12-01 10:00"


class CommandInvalid(ValidationFailed):
    code = "chat_command_invalid"
    message = "指令格式不正确"


@dataclass(frozen=True)
class Command:
    name: str  # lookup | followup | tag | untag | claim | reminders | apply | help | unknown
    word: str  # what was typed as the command word
    rest: str  # everything after it, trimmed


def parse(text: str) -> Command:
    """Split the command word from its arguments; anything unrecognised is ``unknown``."""
    text = re.sub(r"[\u3000\s]+", " ", (text or "")[:MAX_INPUT]).strip()
    if not text:
        return Command("help", "", "")
    for word in _WORDS:
        if text.lower() == word or text.lower().startswith(word + " "):
            return Command(ALIASES[word], word, text[len(word):].strip())
        # Chinese is often typed without the space: "查张三", "领取#12" (not for latin words like "help").
        if not word.isascii() and text.startswith(word):
            return Command(ALIASES[word], word, text[len(word):].strip())
    return Command("unknown", text.split(" ", 1)[0], text)


def split_target(rest: str) -> tuple[str, str]:
    """The customer reference (first word) and what follows it."""
    parts = rest.split(" ", 1)
    return parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")


_NEXT = re.compile(r"(?:^|\s)下次(?:跟进)?(?:时间)?[:：]?\s*(\S.*)$")


def split_followup(rest: str) -> tuple[str, str, str | None]:
    """``<客户> <内容> [下次 <时间>]`` -> (customer ref, content, time expression or None)."""
    ref, tail = split_target(rest)
    match = _NEXT.search(tail)
    if match is None:
        return ref, tail, None
    return ref, tail[:match.start()].strip(), match.group(1).strip()


_TAG_SEP = re.compile(r"[,，、;；]+")


def split_tags(text: str) -> list[str]:
    return [t.strip() for t in _TAG_SEP.split(text) if t.strip()]


# --- time expressions --------------------------------------------------------------------------

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9, "十": 10}
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "1": 0, "2": 1, "3": 2,
             "4": 3, "5": 4, "6": 5, "7": 6}


def _cn_number(text: str) -> int | None:
    """"3", "十", "十二", "二十", "二十三" -> int (small numbers only)."""
    if text.isdigit():
        return int(text)
    if not text or any(ch not in _CN_DIGITS for ch in text):
        return None
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)
    return _CN_DIGITS[text] if len(text) == 1 else None


_NUM = r"(\d{1,3}|[零〇一二两三四五六七八九十]{1,3})"
_PERIOD = r"(凌晨|早上|早晨|上午|中午|下午|傍晚|晚上|今晚)?"
_CLOCK_RE = re.compile(
    rf"^{_PERIOD}\s*(?:(\d{{1,2}})[:：](\d{{2}})|{_NUM}\s*[点时](?:\s*(半|一刻|三刻|(\d{{1,2}})\s*分?))?)$")


def _parse_clock(text: str) -> time | None:
    """"10点", "10点半", "9:30", "下午3点", "晚上8点15分" -> a time of day; "" -> DEFAULT_TIME."""
    text = text.strip()
    if not text:
        return DEFAULT_TIME
    m = _CLOCK_RE.match(text)
    if m is None:
        return None
    period, hh, mm, cn_hour, frac, minutes = m.groups()
    if hh is not None:
        hour, minute = int(hh), int(mm)
    else:
        hour_value = _cn_number(cn_hour)
        if hour_value is None:
            return None
        hour = hour_value
        minute = {"半": 30, "一刻": 15, "三刻": 45}.get(frac or "", int(minutes) if minutes else 0)
    if period in ("下午", "傍晚", "晚上", "今晚") and 1 <= hour < 12:
        hour += 12
    elif period == "中午" and 1 <= hour < 6:
        hour += 12
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return time(hour, minute)


_RELATIVE_DAY = {"今天": 0, "今日": 0, "今晚": 0, "明天": 1, "明日": 1, "明早": 1, "明晚": 1, "后天": 2, "大后天": 3}
_DATE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})[日号]?"), "ymd"),
    (re.compile(r"^(\d{1,2})月(\d{1,2})[日号]"), "md"),
    (re.compile(r"^(\d{1,2})[-/](\d{1,2})(?=\s|$)"), "md"),
    (re.compile(rf"^{_NUM}\s*个?(天|日|周|星期|小时|钟头|分钟)(?:之?后|以后)"), "after"),
    (re.compile(r"^(下下|下|这|本)?(?:周|星期|礼拜)([一二三四五六日天1-7])"), "weekday"),
    (re.compile(r"^(大后天|后天|明天|明日|明早|明晚|今天|今日|今晚)"), "relative"),
]


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """A Chinese time expression -> an aware UTC instant. Refuses with :class:`CommandInvalid`."""
    raw = (text or "").strip()
    now_local = clock.ensure_aware(now or clock.now()).astimezone(clock.BUSINESS_TZ)
    today = now_local.date()
    expr = re.sub(r"\s+", " ", raw)
    day: date | None = None
    rest = expr
    for pattern, kind in _DATE_PATTERNS:
        m = pattern.match(expr)
        if m is None:
            continue
        rest = expr[m.end():].strip()
        try:
            if kind == "ymd":
                day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            elif kind == "md":
                day = date(today.year, int(m.group(1)), int(m.group(2)))
                if day < today:
                    day = date(today.year + 1, day.month, day.day)
            elif kind == "after":
                amount = _cn_number(m.group(1))
                if amount is None or amount <= 0 or amount > 400:
                    raise ValueError
                unit = m.group(2)
                if unit in ("小时", "钟头", "分钟"):
                    if rest:
                        raise ValueError
                    delta = timedelta(hours=amount) if unit != "分钟" else timedelta(minutes=amount)
                    return (now_local + delta).astimezone(UTC)
                day = today + timedelta(days=amount * (7 if unit in ("周", "星期") else 1))
            elif kind == "weekday":
                prefix, target = m.group(1) or "", _WEEKDAYS[m.group(2)]
                monday = today - timedelta(days=today.weekday())
                if prefix in ("下", "下下"):
                    day = monday + timedelta(days=7 * len(prefix) + target)
                else:  # 周三 / 这周三 / 本周三: this week's; already past -> next week's
                    day = monday + timedelta(days=target)
                    if day < today and not prefix:
                        day += timedelta(days=7)
            else:
                word = m.group(1)
                day = today + timedelta(days=_RELATIVE_DAY[word])
                if word in ("今晚", "明晚") and not rest:
                    rest = "20:00"
                elif word in ("今晚", "明晚"):
                    rest = "晚上" + rest
                elif word == "明早" and not rest:
                    rest = "9:00"
        except (ValueError, KeyError):
            raise CommandInvalid(f"无法识别时间「{raw[:30]}」，可以这样写：{TIME_HELP}", field="next_followup_at") \
                from None
        break
    if day is None:
        # A time of day alone ("10点", "下午3点"): today if still ahead, else tomorrow.
        at = _parse_clock(expr) if expr else None
        if at is None:
            raise CommandInvalid(f"无法识别时间「{raw[:30]}」，可以这样写：{TIME_HELP}", field="next_followup_at")
        candidate = datetime.combine(today, at, tzinfo=clock.BUSINESS_TZ)
        if candidate <= now_local:
            candidate += timedelta(days=1)
        return candidate.astimezone(UTC)
    at = _parse_clock(rest)
    if at is None:
        raise CommandInvalid(f"无法识别时间「{raw[:30]}」，可以这样写：{TIME_HELP}", field="next_followup_at")
    return datetime.combine(day, at, tzinfo=clock.BUSINESS_TZ).astimezone(UTC)


def format_local(instant: datetime | None, *, with_year: bool = False) -> str:
    if instant is None:
        return "—"
    local = clock.ensure_aware(instant).astimezone(clock.BUSINESS_TZ)
    return local.strftime("%Y-%m-%d %H:%M" if with_year else "%m-%d %H:%M")
