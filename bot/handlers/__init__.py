"""Event and message handlers, registered on import with ``bot.inbox.handles``."""
