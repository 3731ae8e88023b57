"""Event and message handlers, registered on import with ``bot.inbox.handles``."""

from bot import channel_tasks  # noqa: E402,F401 - bot.restore_channel_codes rides along (bot.tasks imports us)
from bot.handlers import chats, contacts, staff, tags  # noqa: E402,F401 - customer contact, chats, tags, staff
