"""Payments: the notification body's digest beside each seen nonce (a byte-identical re-delivery is
acknowledged, another body under a known nonce refused), and at most one open attempt per obligation
(a partial unique index: the database decides between two simultaneous checkouts or debits)

Revision ID: 0031_payfix_nonce_digest
Revises: 0030_snaphist_snapshot_source
Create Date: 2026-12-06 18:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db  # noqa: F401

revision = '0031_payfix_nonce_digest'
down_revision = '0030_snaphist_snapshot_source'
branch_labels = None
depends_on = None

_OPEN = sa.text("status IN ('created', 'submitted', 'unknown')")


def upgrade() -> None:
    with op.batch_alter_table('payment_nonce', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest', sa.String(length=64), nullable=True))
    op.create_index('uq_payment_order_open_attempt', 'payment_order', ['purpose', 'obligation_ref'], unique=True,
                    postgresql_where=_OPEN, sqlite_where=_OPEN)


def downgrade() -> None:
    op.drop_index('uq_payment_order_open_attempt', table_name='payment_order')
    with op.batch_alter_table('payment_nonce', schema=None) as batch_op:
        batch_op.drop_column('digest')
