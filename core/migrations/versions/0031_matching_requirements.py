"""Product eligibility requirements on the product version (准入条件 from the qualification profile)

Minimum 社保 and 公积金 months, property / car required, maximum debt ratio (monthly debt service over
monthly income), the worst credit level accepted, maximum credit overdue count and credit queries in
six months, allowed and excluded industries. All nullable or defaulted: existing versions have none.

Revision ID: 0031_matching_requirements
Revises: 0031_funnel_customer_rollup
Create Date: 2026-12-06 18:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

from core.migrations.helpers import drop_append_only, make_append_only

revision = '0031_matching_requirements'  # at most 32 characters: alembic_version.version_num
down_revision = '0031_funnel_customer_rollup'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite rebuilds the table for these columns, and its append-only triggers would go with it: dropped
    # first and made again after, on both databases (as 0013 does for the repayments)
    drop_append_only('lending_product_version')
    with op.batch_alter_table('lending_product_version') as batch:
        batch.add_column(sa.Column('min_social_insurance_months', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch.add_column(sa.Column('min_provident_fund_months', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch.add_column(sa.Column('property_required', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('car_required', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('max_debt_ratio', sa.Numeric(precision=8, scale=4), nullable=True))
        batch.add_column(sa.Column('min_credit_level', sa.String(length=12), nullable=True))
        batch.add_column(sa.Column('max_credit_overdue_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch.add_column(sa.Column('max_credit_queries_6m', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch.add_column(sa.Column('allowed_industries', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('excluded_industries', sa.JSON(), nullable=True))
    make_append_only('lending_product_version')


def downgrade() -> None:
    drop_append_only('lending_product_version')
    with op.batch_alter_table('lending_product_version') as batch:
        for name in ('excluded_industries', 'allowed_industries', 'max_credit_queries_6m', 'max_credit_overdue_count',
                     'min_credit_level', 'max_debt_ratio', 'car_required', 'property_required',
                     'min_provident_fund_months', 'min_social_insurance_months'):
            batch.drop_column(name)
    make_append_only('lending_product_version')
