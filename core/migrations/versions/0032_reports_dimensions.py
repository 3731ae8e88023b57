"""report builder: a second dimension (a cross-tab, e.g. 月份 × 来源) on a saved report

Revision ID: 0032_reports_dimensions
Revises: 0031_consoleload_list_indexes
Create Date: 2026-12-06 19:10:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0032_reports_dimensions'  # at most 32 characters: alembic_version.version_num
down_revision = '0031_consoleload_list_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('analytics_report') as batch:
        batch.add_column(sa.Column('second_dimension', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('analytics_report') as batch:
        batch.drop_column('second_dimension')
