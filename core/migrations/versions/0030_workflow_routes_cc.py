"""workflow designer: conditional transitions (流转条件) and CC recipients (抄送) per node

Revision ID: 0030_workflow_routes_cc
Revises: 0030_cobperf_fillfactor
Create Date: 2026-12-06 15:40:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0030_workflow_routes_cc'
down_revision = '0030_cobperf_fillfactor'  # the lead re-chains migrations when merging
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: the nodes of stored versions have none (read as an empty list); nodes are never updated
    with op.batch_alter_table('lending_workflow_node', schema=None) as batch_op:
        batch_op.add_column(sa.Column('routes', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('cc_roles', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('cc_staff_ids', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('lending_workflow_node', schema=None) as batch_op:
        batch_op.drop_column('cc_staff_ids')
        batch_op.drop_column('cc_roles')
        batch_op.drop_column('routes')
