"""Tables owned by the kernel (imported by the composition root for Alembic's metadata)."""

from core.audit import AuditLog  # noqa: F401
from core.outbox import TaskOutbox  # noqa: F401
from core.ratelimit import RateLimitWindow  # noqa: F401
