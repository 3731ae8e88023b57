"""WeCom callback inbox and nonce ledger

Revision ID: 0003_bot
Revises: 0003_handover
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = "0003_bot"
down_revision = "0003_handover"  # one linear chain
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "wecom_inbox",
        sa.Column("id", ID, nullable=False),
        sa.Column("event_key", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=80), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("payload_enc", sa.Text(), nullable=False),
        sa.Column("summary", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", ID, nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("received_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("processed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_inbox")),
        sa.UniqueConstraint("event_key", name=op.f("uq_wecom_inbox_event_key")),
    )
    op.create_index("ix_wecom_inbox_status_received", "wecom_inbox", ["status", "received_at"], unique=False)
    op.create_table(
        "wecom_nonce",
        sa.Column("id", ID, nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("timestamp", sa.String(length=16), nullable=False),
        sa.Column("seen_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_nonce")),
        sa.UniqueConstraint("nonce", "timestamp", name=op.f("uq_wecom_nonce_nonce_timestamp")),
    )
    op.create_index(op.f("ix_wecom_nonce_seen_at"), "wecom_nonce", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_wecom_nonce_seen_at"), table_name="wecom_nonce")
    op.drop_table("wecom_nonce")
    op.drop_index("ix_wecom_inbox_status_received", table_name="wecom_inbox")
    op.drop_table("wecom_inbox")
