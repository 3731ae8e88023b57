"""customer qualification profile (资质: plain coarse facts, the personal figures sealed) and
manager-defined custom fields with their values (issue 17 section 2)

Revision ID: 0018_qualification_profile
Revises: 0020_servicing_more
Create Date: 2026-12-06 11:19:47.112505
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0018_qualification_profile'
down_revision = '0020_servicing_more'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('crm_custom_field',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=30), nullable=False),
    sa.Column('field_type', sa.String(length=8), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('customer_types', sa.JSON(), nullable=False),
    sa.Column('sensitive', sa.Boolean(), nullable=False),
    sa.Column('show_in_list', sa.Boolean(), nullable=False),
    sa.Column('position', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("field_type IN ('text', 'number', 'date', 'choice')", name=op.f('ck_crm_custom_field_field_type_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_custom_field')),
    sa.UniqueConstraint('key', name=op.f('uq_crm_custom_field_key')),
    sa.UniqueConstraint('label', name=op.f('uq_crm_custom_field_label'))
    )
    op.create_table('customer_field_value',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('field_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('text_value', sa.String(length=200), nullable=True),
    sa.Column('number_value', sa.Numeric(precision=20, scale=4), nullable=True),
    sa.Column('date_value', sa.Date(), nullable=True),
    sa.Column('sealed_value', sa.String(length=1000), nullable=True),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_customer_field_value_customer_id_customer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['field_id'], ['crm_custom_field.id'], name=op.f('fk_customer_field_value_field_id_crm_custom_field'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'field_id', name=op.f('pk_customer_field_value'))
    )
    with op.batch_alter_table('customer_field_value', schema=None) as batch_op:
        batch_op.create_index('ix_customer_field_value_field_date', ['field_id', 'date_value'], unique=False)
        batch_op.create_index('ix_customer_field_value_field_number', ['field_id', 'number_value'], unique=False)
        batch_op.create_index('ix_customer_field_value_field_text', ['field_id', 'text_value'], unique=False)

    op.create_table('customer_qualification',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('employment_type', sa.String(length=16), nullable=True),
    sa.Column('industry', sa.String(length=40), nullable=True),
    sa.Column('income_band', sa.String(length=8), nullable=True),
    sa.Column('social_insurance_months', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('provident_fund_months', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('property_status', sa.String(length=8), nullable=True),
    sa.Column('car_status', sa.String(length=8), nullable=True),
    sa.Column('has_debt', sa.Boolean(), nullable=True),
    sa.Column('credit_level', sa.String(length=8), nullable=True),
    sa.Column('sealed', sa.String(length=4000), nullable=True),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint('provident_fund_months IS NULL OR provident_fund_months BETWEEN 0 AND 600', name=op.f('ck_customer_qualification_provident_fund_months_range')),
    sa.CheckConstraint('social_insurance_months IS NULL OR social_insurance_months BETWEEN 0 AND 600', name=op.f('ck_customer_qualification_social_insurance_months_range')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_customer_qualification_customer_id_customer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_customer_qualification'))
    )


def downgrade() -> None:
    op.drop_table('customer_qualification')
    with op.batch_alter_table('customer_field_value', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_field_value_field_text')
        batch_op.drop_index('ix_customer_field_value_field_number')
        batch_op.drop_index('ix_customer_field_value_field_date')

    op.drop_table('customer_field_value')
    op.drop_table('crm_custom_field')
