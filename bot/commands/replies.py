"""What the app answers in WeCom, and how the answer leaves.

Replies are queued on the unit of work (:func:`queue`) and sent as app messages (``message/send``
to the sender, the app's agentid) right after it commits; a rollback drops them. So a salesperson
is never told "已记录" about something that was not recorded, and a re-delivered callback that
finds its inbox row already done sends nothing twice. Every reply goes through
:func:`core.pii.mask_text` on its way out: no plaintext phone or ID number ever leaves.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from bot.commands.parser import TIME_HELP, format_local
from core import pii

log = logging.getLogger(__name__)

_KEY = "bot_chat_replies"
MAX_REPLY = 1800  # WeCom's text limit is 2048 bytes; keep well under for CJK


@dataclass(frozen=True)
class Reply:
    touser: str
    content: str


def queue(session: Session, touser: str, content: str) -> None:
    """Send ``content`` to ``touser`` once this unit of work has committed."""
    if not session.in_transaction():
        session.begin()
    session.info.setdefault(_KEY, []).append(Reply(touser, clip(pii.mask_text(content))))


def pending(session: Session) -> list[Reply]:
    return list(session.info.get(_KEY, []))


def clip(text: str, limit: int = MAX_REPLY) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def send(reply: Reply) -> None:
    from bot.gateway import get_gateway

    get_gateway().send_app_message([reply.touser], reply.content)


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # SQLAlchemy fires after_commit on a savepoint's release too
        return
    for reply in session.info.pop(_KEY, []):
        try:
            send(reply)
        except Exception:  # the work is committed; a lost answer must not undo or repeat it
            log.exception("chat reply to %s could not be sent", reply.touser)


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_KEY, None)


# --- texts ------------------------------------------------------------------------------------

HELP = "\n".join([
    "可用指令（发送给本应用即可）：",
    "· 查 <手机号|姓名|拼音> 例：查 13812345678、查 张三、查 zhangsan、查 zs",
    "· 跟进 <客户> <内容> [下次 <时间>] 例：跟进 张三 电话沟通有意向 下次 明天10点",
    "· 标签 <客户> <标签名>[,<标签名>] 例：标签 张三 高意向,有房",
    "· 去标签 <客户> <标签名> 例：去标签 张三 高意向",
    "· 领取 <客户> 从公海领取 例：领取 #1024",
    "· 提醒 / 今日 今天到期和逾期的跟进、待办",
    "· 进件 <客户> <产品> <金额> <期限> 例：进件 张三 信用贷 5万 12期",
    "· 帮助 显示本说明",
    "客户可写手机号、姓名、拼音（全拼或首字母）或 #编号；匹配到多位客户时请用 #编号 指定。",
    f"时间可写：{TIME_HELP}（只写日期默认 9:00）。",
])

UNKNOWN_SENDER = "抱歉，您的企业微信账号尚未绑定本系统员工，暂不能使用指令。请联系管理员在「员工」中绑定企业微信账号。"
DEPARTED_SENDER = "抱歉，您的账号已停用，不能再使用本应用的指令。如有疑问请联系管理员。"
FAILED = "抱歉，指令没有执行成功：{message}"


def unknown_command(word: str) -> str:
    return f"没有「{word[:20]}」这个指令。\n" + HELP


def customer_line(label: str, masked_phone: str | None, stage: str, grade: str | None, owner: str | None,
                  next_followup_at: object, *, status: str | None = None) -> str:
    parts = [label + (f" {masked_phone}" if masked_phone else "")]
    parts.append(stage)
    parts.append(f"{grade}级" if grade else "未分级")
    if status:
        parts.append(status)
    else:
        parts.append(f"负责人 {owner}" if owner else "无负责人")
    parts.append(f"下次跟进 {format_local(next_followup_at)}" if next_followup_at else "未约下次跟进")
    return "｜".join(parts)


def numbered(lines: Sequence[str]) -> str:
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))
