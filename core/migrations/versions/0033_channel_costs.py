"""channel costs (渠道成本): what a lead channel cost on a day, for the cost per lead and per disbursed loan of the
manager's channel analysis; voided, never edited

Revision ID: 0033_channel_costs
Revises: 0032_reports_dimensions
Create Date: 2026-12-06 21:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0033_channel_costs'  # at most 32 characters: alembic_version.version_num
down_revision = '0032_reports_dimensions'
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'analytics_channel_cost',
        sa.Column('id', BIGINT, nullable=False),
        sa.Column('source', sa.String(length=40), nullable=False),
        sa.Column('spent_on', sa.Date(), nullable=False),
        sa.Column('amount', BIGINT, nullable=False),
        sa.Column('department_id', BIGINT, nullable=True),
        sa.Column('note', sa.String(length=200), nullable=True),
        sa.Column('created_by_staff_id', BIGINT, nullable=False),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('voided_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('voided_by_staff_id', BIGINT, nullable=True),
        sa.Column('void_reason', sa.String(length=200), nullable=True),
        sa.CheckConstraint('amount > 0', name=op.f('ck_analytics_channel_cost_amount_positive')),
        sa.ForeignKeyConstraint(['department_id'], ['department.id'],
                                name=op.f('fk_analytics_channel_cost_department_id_department')),
        sa.ForeignKeyConstraint(['created_by_staff_id'], ['staff.id'],
                                name=op.f('fk_analytics_channel_cost_created_by_staff_id_staff')),
        sa.ForeignKeyConstraint(['voided_by_staff_id'], ['staff.id'],
                                name=op.f('fk_analytics_channel_cost_voided_by_staff_id_staff')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_channel_cost')),
    )
    op.create_index('ix_analytics_channel_cost_day', 'analytics_channel_cost', ['spent_on', 'source'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_analytics_channel_cost_day', table_name='analytics_channel_cost')
    op.drop_table('analytics_channel_cost')
