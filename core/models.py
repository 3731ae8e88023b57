"""Tables owned by the kernel (imported by the composition root for Alembic's metadata)."""

from core.audit import AuditLog  # noqa: F401
