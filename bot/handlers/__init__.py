"""Event and message handlers, registered on import with ``bot.inbox.handles``."""

from bot.handlers import chats, contacts, staff, tags  # noqa: F401 - customer contact, chats, tags, staff
