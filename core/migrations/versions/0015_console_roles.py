"""approval controls: a workflow says whether one person may approve two review nodes of an application

``lending_workflow_definition.distinct_reviewers`` (on by default, existing workflows included): the
same staff member cannot pass both 初审 and 复审 of one application.

Revision ID: 0015_console_roles
Revises: 0008_customer_search_indexes
Create Date: 2026-12-06 08:40:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db  # noqa: F401

revision = '0015_console_roles'
down_revision = '0011_finance'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lending_workflow_definition', schema=None) as batch_op:
        batch_op.add_column(sa.Column('distinct_reviewers', sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('lending_workflow_definition', schema=None) as batch_op:
        batch_op.drop_column('distinct_reviewers')
