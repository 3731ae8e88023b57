"""Errors of WeCom API calls, rendered in Chinese for people and with WeCom's errcode for programs."""

from __future__ import annotations

from core.errors import AppError

# Chinese hints for the errcodes our flows meet; anything else shows WeCom's own errmsg.
ERRCODE_HINTS: dict[int, str] = {
    -1: "企业微信系统繁忙",
    40001: "应用 Secret 不正确",
    40013: "企业 ID 不正确",
    40014: "access_token 无效",
    40058: "参数不符合企业微信的要求",
    40096: "外部联系人 ID 不正确",
    40128: "该客户 90 天内已转接 2 次，暂不能再次转接",
    40129: "该客户正在转接中",
    41001: "缺少 access_token",
    41051: "欢迎语 code 已失效或已被使用（须在添加后 20 秒内发送一次）",
    42001: "access_token 已过期",
    45009: "企业微信接口调用过于频繁",
    45033: "企业微信接口并发调用过多",
    60011: "应用无权操作该数据（例如不是本应用创建的标签）",
    84061: "不存在该外部联系人关系",
    86003: "群聊不存在（或不是本应用创建的群聊）",
    86006: "群聊成员人数不符合要求（至少 2 人，至多 2000 人）",
    86007: "群聊成员中有无效的企业微信账号",
    86215: "群聊 ID 已存在",
    90500: "群主尚未离职",
}


class WecomApiError(AppError):
    """WeCom answered errcode != 0."""

    code = "wecom_api_error"
    status = 502
    message = "企业微信接口返回错误"

    def __init__(self, errcode: int, errmsg: str = "", *, message: str | None = None) -> None:
        self.errcode = int(errcode)
        self.errmsg = errmsg or ""
        hint = ERRCODE_HINTS.get(self.errcode) or self.errmsg or "未知错误"
        super().__init__(message or f"企业微信接口返回错误（{self.errcode}）：{hint}",
                         errcode=self.errcode, errmsg=self.errmsg[:200])


class WecomRateLimited(WecomApiError):
    """45009 / 45033 still answered after our bounded backoff."""

    code = "wecom_rate_limited"
    status = 429

    def __init__(self, errcode: int, errmsg: str = "") -> None:
        super().__init__(errcode, errmsg, message="企业微信接口调用过于频繁，已多次重试仍被限流，请稍后再试")


class WecomUnavailable(AppError):
    """The WeCom API could not be reached or answered something that is not WeCom's JSON."""

    code = "wecom_unavailable"
    status = 502
    message = "企业微信接口暂时无法连接，请稍后再试"
