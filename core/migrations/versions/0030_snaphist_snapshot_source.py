"""analytics_snapshot.source: nightly (taken that night) or backfill (reconstructed afterwards from the records)

Revision ID: 0030_snaphist_snapshot_source
Revises: 0030_dashperf_indexes
Create Date: 2026-12-06 16:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0030_snaphist_snapshot_source'
down_revision = '0030_dashperf_indexes'  # the current head of main; the lead re-chains migrations when merging
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('analytics_snapshot') as batch:
        batch.add_column(sa.Column('source', sa.String(length=10), nullable=False, server_default='nightly'))


def downgrade() -> None:
    with op.batch_alter_table('analytics_snapshot') as batch:
        batch.drop_column('source')
