"""WeCom callbacks: the request body's digest beside each seen nonce (a byte-identical re-delivery is
acknowledged, another body under a known nonce refused)

Revision ID: 0014_sidebar_profile
Revises: 0008_customer_search_indexes
Create Date: 2026-12-06 08:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db  # noqa: F401

revision = '0014_sidebar_profile'
down_revision = '0015_console_roles'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('wecom_nonce', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('wecom_nonce', schema=None) as batch_op:
        batch_op.drop_column('digest')
