"""Every task of the post-loan package (core.plugins imports this to register them)."""

from postloan.telephony import tasks as telephony_tasks  # noqa: F401
