"""durable outbox: task_outbox, one row per task call, written in the transaction that enqueues it

Revision ID: 0010_durable_outbox
Revises: 0008_customer_search_indexes
Create Date: 2026-12-06 08:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0010_durable_outbox'
down_revision = '0008_customer_search_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'task_outbox',
        sa.Column('id', core.db.BigInt, nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('args', sa.JSON(), nullable=False),
        sa.Column('kwargs', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('attempts', core.db.BigInt, nullable=False),
        sa.Column('created_at', core.db.UTCDateTime(), nullable=False),
        sa.Column('due_at', core.db.UTCDateTime(), nullable=False),
        sa.Column('countdown', sa.Double(), nullable=True),
        sa.Column('sent_at', core.db.UTCDateTime(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_task_outbox')),
    )
    op.create_index('ix_task_outbox_status_due', 'task_outbox', ['status', 'due_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_task_outbox_status_due', table_name='task_outbox')
    op.drop_table('task_outbox')
