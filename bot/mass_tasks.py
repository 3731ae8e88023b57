"""Tasks for corp tags, group chats and mass messages.

- ``bot.mark_tags(customer_id, add_tag_ids, remove_tag_ids)``: enqueued by :mod:`crm.tags` (now that it is
  registered) when tags that mirror WeCom corp tags change on a WeCom contact.
- ``bot.sync_corp_tags``: full pull of the corp tag library (the console's button, and daily).
- ``bot.sync_group_chats``: full customer group chat sync (the console's button, and daily).
- ``bot.send_mass_message(mass_message_id)``: one ``add_msg_template`` per pending send, each in its own
  transaction, the send marked ``submitting`` (committed) before the call: a retry never re-creates a template
  already created, even when the worker died between WeCom's answer and the commit (it finds and adopts it).
- ``bot.poll_mass_messages(mass_message_id=None)``: results of created templates (every 10 minutes).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot import group_routes, mass_messages, tag_sync
from bot.task_support import wecom_task
from core.db import unit_of_work
from core.tasks import periodic

log = logging.getLogger(__name__)


@wecom_task("bot.mark_tags")
def mark_tags(customer_id: int, add_tag_ids: list[int], remove_tag_ids: list[int]) -> str:
    with unit_of_work() as session:
        return tag_sync.mark_tags(session, customer_id, list(add_tag_ids or []), list(remove_tag_ids or [])).status


@wecom_task("bot.sync_corp_tags")
def sync_corp_tags() -> None:
    with unit_of_work() as session:
        result = tag_sync.pull(session)
    log.info("corp tags pulled: %s", result)


@wecom_task("bot.sync_group_chats")
def sync_group_chats() -> None:
    with unit_of_work() as session:
        result = group_routes.sync_group_chats(session)
    log.info("group chats synced: %s", result)


@wecom_task("bot.send_mass_message")
def send_mass_message(mass_message_id: int) -> None:
    with unit_of_work() as session:
        send_ids = mass_messages.pending_send_ids(session, mass_message_id)
    for send_id in send_ids:
        with unit_of_work() as session:  # committed before WeCom is called: a retry knows a call may have happened
            if not mass_messages.start_send(session, send_id):
                continue
        with unit_of_work() as session:
            mass_messages.create_template(session, send_id)
    with unit_of_work() as session:
        mass_messages.finish_sending(session, mass_message_id)


@wecom_task("bot.poll_mass_messages")
def poll_mass_messages(mass_message_id: int | None = None) -> None:
    with unit_of_work() as session:
        send_ids = mass_messages.sends_to_poll(session, mass_message_id)
    for send_id in send_ids:
        with unit_of_work() as session:
            mass_messages.poll_send(session, send_id)


periodic("bot.poll_mass_messages", timedelta(minutes=10))
periodic("bot.sync_corp_tags", timedelta(hours=24))
periodic("bot.sync_group_chats", timedelta(hours=24))
