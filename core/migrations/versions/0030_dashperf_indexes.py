"""dashboard indexes: a period's leads (customer.created_at, with the id and the owner the scope asks) and the
overdue trend's snapshot rows (the overdue buckets) are read from an index alone

Revision ID: 0030_dashperf_indexes
Revises: 0030_workflow_routes_cc
Create Date: 2026-12-06 14:30:00.000000
"""
from alembic import op

revision = '0030_dashperf_indexes'
down_revision = '0030_workflow_routes_cc'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_customer_created', table_name='customer')
    op.create_index('ix_customer_created', 'customer', ['created_at', 'id'], unique=False,
                    postgresql_include=['owner_id'])
    op.create_index('ix_analytics_loan_day_bucket', 'analytics_loan_day', ['bucket', 'snapshot_date'],
                    unique=False, postgresql_include=['outstanding_principal_amount', 'loan_id'])


def downgrade() -> None:
    op.drop_index('ix_analytics_loan_day_bucket', table_name='analytics_loan_day')
    op.drop_index('ix_customer_created', table_name='customer')
    op.create_index('ix_customer_created', 'customer', ['created_at'], unique=False)
