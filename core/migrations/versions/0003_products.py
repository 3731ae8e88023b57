"""lending products (funders, products, immutable product versions) and risk rules (rule sets, versions, evaluations)

Revision ID: 0003_products
Revises: 0003_mass
Create Date: 2026-11-23 18:35:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db
from core.migrations.helpers import drop_append_only, make_append_only

revision = '0003_products'
down_revision = "0003_mass"  # one linear chain
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lending_funder',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('funder_type', sa.String(length=20), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lending_funder')),
    sa.UniqueConstraint('name', name=op.f('uq_lending_funder_name'))
    )
    op.create_table('lending_product',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('funder_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('current_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['current_version_id'], ['lending_product_version.id'], name='fk_lending_product_current_version', use_alter=True),
    sa.ForeignKeyConstraint(['funder_id'], ['lending_funder.id'], name=op.f('fk_lending_product_funder_id_lending_funder')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lending_product')),
    sa.UniqueConstraint('code', name=op.f('uq_lending_product_code'))
    )
    with op.batch_alter_table('lending_product', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lending_product_funder_id'), ['funder_id'], unique=False)

    op.create_table('lending_product_version',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('min_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('max_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('terms_months', sa.JSON(), nullable=False),
    sa.Column('repayment_method', sa.String(length=20), nullable=False),
    sa.Column('annual_rate', sa.Numeric(precision=12, scale=8), nullable=False),
    sa.Column('interest_method', sa.String(length=12), nullable=False),
    sa.Column('interest_period', sa.String(length=8), nullable=False),
    sa.Column('days_in_year', sa.String(length=8), nullable=False),
    sa.Column('currency_digits', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rounding', sa.String(length=12), nullable=False),
    sa.Column('installment_multiple_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('grace_principal_periods', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('grace_interest_periods', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('penalty_rate', sa.Numeric(precision=12, scale=8), nullable=False),
    sa.Column('penalty_basis', sa.String(length=8), nullable=False),
    sa.Column('service_fee_rate', sa.Numeric(precision=12, scale=8), nullable=False),
    sa.Column('service_fee_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('service_fee_timing', sa.String(length=12), nullable=False),
    sa.Column('deposit_rate', sa.Numeric(precision=12, scale=8), nullable=False),
    sa.Column('deposit_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('deposit_refundable', sa.Boolean(), nullable=False),
    sa.Column('min_age', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('max_age', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('regions', sa.JSON(), nullable=True),
    sa.Column('customer_types', sa.JSON(), nullable=True),
    sa.Column('min_income_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('max_apr_rate', sa.Numeric(precision=12, scale=8), nullable=True),
    sa.Column('note', sa.String(length=300), nullable=True),
    sa.Column('created_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('annual_rate >= 0', name=op.f('ck_lending_product_version_annual_rate_non_negative')),
    sa.CheckConstraint('min_age IS NULL OR max_age IS NULL OR max_age >= min_age', name=op.f('ck_lending_product_version_age_range')),
    sa.CheckConstraint('min_amount > 0 AND max_amount >= min_amount', name=op.f('ck_lending_product_version_amount_range')),
    sa.ForeignKeyConstraint(['created_by_staff_id'], ['staff.id'], name=op.f('fk_lending_product_version_created_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['product_id'], ['lending_product.id'], name=op.f('fk_lending_product_version_product_id_lending_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lending_product_version')),
    sa.UniqueConstraint('product_id', 'version', name=op.f('uq_lending_product_version_product_id_version'))
    )
    with op.batch_alter_table('lending_product_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lending_product_version_product_id'), ['product_id'], unique=False)

    op.create_table('lending_rule_set',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('current_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['current_version_id'], ['lending_rule_set_version.id'], name='fk_lending_rule_set_current_version', use_alter=True),
    sa.ForeignKeyConstraint(['product_id'], ['lending_product.id'], name=op.f('fk_lending_rule_set_product_id_lending_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lending_rule_set')),
    sa.UniqueConstraint('product_id', name=op.f('uq_lending_rule_set_product_id'))
    )
    op.create_table('lending_rule_set_version',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rule_set_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('credit_limit_expression', sa.String(length=500), nullable=True),
    sa.Column('note', sa.String(length=300), nullable=True),
    sa.Column('created_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_staff_id'], ['staff.id'], name=op.f('fk_lending_rule_set_version_created_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['rule_set_id'], ['lending_rule_set.id'], name=op.f('fk_lending_rule_set_version_rule_set_id_lending_rule_set')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lending_rule_set_version')),
    sa.UniqueConstraint('rule_set_id', 'version', name=op.f('uq_lending_rule_set_version_rule_set_id_version'))
    )
    with op.batch_alter_table('lending_rule_set_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lending_rule_set_version_rule_set_id'), ['rule_set_id'], unique=False)

    op.create_table('lending_risk_evaluation',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rule_set_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('application_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('inputs', sa.JSON(), nullable=False),
    sa.Column('hits', sa.JSON(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('credit_limit_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('provider', sa.String(length=40), nullable=True),
    sa.Column('provider_status', sa.String(length=16), nullable=False),
    sa.Column('provider_detail', sa.String(length=200), nullable=True),
    sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['by_staff_id'], ['staff.id'], name=op.f('fk_lending_risk_evaluation_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_lending_risk_evaluation_customer_id_customer')),
    sa.ForeignKeyConstraint(['product_version_id'], ['lending_product_version.id'], name=op.f('fk_lending_risk_evaluation_product_version_id_lending_product_version')),
    sa.ForeignKeyConstraint(['rule_set_version_id'], ['lending_rule_set_version.id'], name=op.f('fk_lending_risk_evaluation_rule_set_version_id_lending_rule_set_version')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lending_risk_evaluation'))
    )
    with op.batch_alter_table('lending_risk_evaluation', schema=None) as batch_op:
        batch_op.create_index('ix_lending_risk_evaluation_application', ['application_id'], unique=False)
        batch_op.create_index('ix_lending_risk_evaluation_customer_at', ['customer_id', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_lending_risk_evaluation_product_version_id'), ['product_version_id'], unique=False)

    # Versions and evaluations are never changed, in the database itself too.
    for table in ('lending_product_version', 'lending_rule_set_version', 'lending_risk_evaluation'):
        make_append_only(table)
    if op.get_bind().dialect.name != "sqlite":
        # The circular "current version" keys: SQLite created them inline; elsewhere CREATE TABLE omits
        # use_alter keys, so add them now that both tables exist.
        op.create_foreign_key('fk_lending_product_current_version', 'lending_product', 'lending_product_version',
                              ['current_version_id'], ['id'])
        op.create_foreign_key('fk_lending_rule_set_current_version', 'lending_rule_set', 'lending_rule_set_version',
                              ['current_version_id'], ['id'])


def downgrade() -> None:
    for table in ('lending_product_version', 'lending_rule_set_version', 'lending_risk_evaluation'):
        drop_append_only(table)
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint('fk_lending_rule_set_current_version', 'lending_rule_set', type_='foreignkey')
        op.drop_constraint('fk_lending_product_current_version', 'lending_product', type_='foreignkey')
    with op.batch_alter_table('lending_risk_evaluation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lending_risk_evaluation_product_version_id'))
        batch_op.drop_index('ix_lending_risk_evaluation_customer_at')
        batch_op.drop_index('ix_lending_risk_evaluation_application')

    op.drop_table('lending_risk_evaluation')
    with op.batch_alter_table('lending_rule_set_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lending_rule_set_version_rule_set_id'))

    op.drop_table('lending_rule_set_version')
    op.drop_table('lending_rule_set')
    with op.batch_alter_table('lending_product_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lending_product_version_product_id'))

    op.drop_table('lending_product_version')
    with op.batch_alter_table('lending_product', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lending_product_funder_id'))

    op.drop_table('lending_product')
    op.drop_table('lending_funder')
