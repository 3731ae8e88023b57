"""WeCom gateway: access-token cache (used without Redis)

Revision ID: 0003_gateway
Revises: 0003_bot
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = "0003_gateway"
down_revision = "0003_bot"  # one linear chain
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "wecom_access_token",
        sa.Column("id", ID, nullable=False),
        sa.Column("cache_key", sa.String(length=80), nullable=False),
        sa.Column("token_enc", sa.Text(), nullable=False),
        sa.Column("expires_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_access_token")),
        sa.UniqueConstraint("cache_key", name=op.f("uq_wecom_access_token_cache_key")),
    )


def downgrade() -> None:
    op.drop_table("wecom_access_token")
