"""report builder (自定义报表): saved reports and their scheduled pushes to a WeCom group chat

Revision ID: 0030_reports_builder
Revises: 0030_servicing_refunds
Create Date: 2026-12-06 14:40:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0030_reports_builder'
down_revision = '0030_servicing_refunds'
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'analytics_report',
        sa.Column('id', BIGINT, nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('metrics', sa.JSON(), nullable=False),
        sa.Column('dimension', sa.String(length=20), nullable=True),
        sa.Column('period', sa.String(length=12), nullable=False),
        sa.Column('filters', sa.JSON(), nullable=False),
        sa.Column('shared_roles', sa.JSON(), nullable=False),
        sa.Column('owner_staff_id', BIGINT, nullable=False),
        sa.Column('schedule', sa.String(length=10), nullable=False),
        sa.Column('schedule_weekday', BIGINT, nullable=True),
        sa.Column('schedule_time', sa.String(length=5), nullable=True),
        sa.Column('schedule_since', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('chat_name', sa.String(length=50), nullable=True),
        sa.Column('chat_staff_ids', sa.JSON(), nullable=False),
        sa.Column('chat_id', sa.String(length=32), nullable=True),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("schedule IN ('none', 'daily', 'weekly')", name=op.f('ck_analytics_report_schedule_known')),
        sa.ForeignKeyConstraint(['owner_staff_id'], ['staff.id'], name=op.f('fk_analytics_report_owner_staff_id_staff')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_report')),
    )
    op.create_index('ix_analytics_report_owner', 'analytics_report', ['owner_staff_id'], unique=False)
    op.create_table(
        'analytics_report_push',
        sa.Column('id', BIGINT, nullable=False),
        sa.Column('report_id', BIGINT, nullable=False),
        sa.Column('period_key', sa.String(length=12), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('msgid', sa.String(length=64), nullable=True),
        sa.Column('error', sa.String(length=300), nullable=True),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('sent_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'unknown')",
                           name=op.f('ck_analytics_report_push_status_known')),
        sa.ForeignKeyConstraint(['report_id'], ['analytics_report.id'],
                                name=op.f('fk_analytics_report_push_report_id_analytics_report')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_report_push')),
        sa.UniqueConstraint('report_id', 'period_key', name='uq_analytics_report_push_period'),
    )


def downgrade() -> None:
    op.drop_table('analytics_report_push')
    op.drop_index('ix_analytics_report_owner', table_name='analytics_report')
    op.drop_table('analytics_report')
