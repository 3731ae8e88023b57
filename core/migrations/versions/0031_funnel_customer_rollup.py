"""analytics_customer_funnel: per customer, the first time it reached each funnel step, kept by triggers on the
event tables (core.migrations.funnel_rollup) and backfilled from the events already recorded

Revision ID: 0031_funnel_customer_rollup
Revises: 0030_snaphist_snapshot_source
Create Date: 2026-12-06 18:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db
from core.migrations import funnel_rollup

revision = '0031_funnel_customer_rollup'
down_revision = '0031_finfix_charged_version'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'analytics_customer_funnel',
        sa.Column('customer_id', core.db.BigInt, nullable=False),
        sa.Column('lead_at', core.db.UTCDateTime(), nullable=False),
        *(sa.Column(f'{step}_at', core.db.UTCDateTime(), nullable=True) for step in funnel_rollup.STEPS),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ondelete='CASCADE',
                                name=op.f('fk_analytics_customer_funnel_customer_id_customer')),
        sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_analytics_customer_funnel')),
    )
    for step in ('lead', *funnel_rollup.STEPS):
        op.create_index(f'ix_analytics_customer_funnel_{step}', 'analytics_customer_funnel', [f'{step}_at'])
    bind = op.get_bind()
    funnel_rollup.create_triggers(bind)
    funnel_rollup.rebuild(bind)


def downgrade() -> None:
    funnel_rollup.drop_triggers(op.get_bind())
    op.drop_table('analytics_customer_funnel')
