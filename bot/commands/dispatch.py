"""The inbox handler for text messages to the app: who sent it, which command, run it, answer.

Runs in ``bot.process_inbox`` (off the callback path), inside the inbox row's transaction. A
command runs in a savepoint: a refusal (any AppError) undoes what it wrote and becomes the
answer; an unexpected error propagates so the inbox retries the event. Queries stay small (exact
blind-index phone lookups, short LIMITed lists) so the answer arrives within seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from bot import inbox
from bot.commands import apply, claim, followup, lookup, reminders, replies, tagging
from bot.commands.parser import Command, parse
from core import audit
from core.errors import AppError
from crm import org_service
from crm.models import StaffStatus
from crm.scope import Viewer

log = logging.getLogger(__name__)

Runner = Callable[[Session, Viewer, Command], str]


def _help(session: Session, viewer: Viewer, command: Command) -> str:
    return replies.HELP


def _unknown(session: Session, viewer: Viewer, command: Command) -> str:
    return replies.unknown_command(command.word)


COMMANDS: dict[str, Runner] = {
    "lookup": lookup.run,
    "followup": followup.run,
    "tag": tagging.run,
    "untag": tagging.run,
    "claim": claim.run,
    "reminders": reminders.run,
    "apply": apply.run,
    "help": _help,
    "unknown": _unknown,
}


def answer(session: Session, userid: str, content: str) -> str:
    """The reply to ``content`` typed by WeCom user ``userid`` (commands' writes flushed, not committed)."""
    staff = org_service.find_by_wecom_userid(session, userid)
    if staff is None:
        return replies.UNKNOWN_SENDER
    if staff.status != StaffStatus.ACTIVE:
        return replies.DEPARTED_SENDER
    viewer = Viewer.of(staff)
    command = parse(content)
    previous = audit.current_actor()
    audit.set_context(audit.Actor("staff", staff.id, f"{staff.display_name}（企业微信）"))
    try:
        with session.begin_nested():
            return COMMANDS[command.name](session, viewer, command)
    except AppError as exc:
        log.info("chat command %s by staff %s refused: %s", command.name, staff.id, exc.code)
        return replies.FAILED.format(message=exc.message)
    finally:
        audit.set_context(previous if previous.kind != "system" else None)


@inbox.handles("text")
def on_text(session: Session, fields: dict[str, str]) -> None:
    userid = (fields.get("FromUserName") or "").strip()
    if not userid:
        return
    replies.queue(session, userid, answer(session, userid, fields.get("Content") or ""))
