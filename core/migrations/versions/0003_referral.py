"""referral: referrers, first-touch attributions, versioned commission rules, the append-only commission
ledger, withdrawal requests and payout batches

loan_id and product_id are plain ids (lending's tables live on another migration branch).

Revision ID: 0003_referral
Revises: 0004_applications
Create Date: 2026-11-23 18:40:40.604662
"""
import sqlalchemy as sa
from alembic import op

import core.db
from core.migrations.helpers import drop_append_only, make_append_only

revision = '0003_referral'
down_revision = "0004_applications"  # one linear chain
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('commission_rule',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('beneficiary_kind', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('current_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commission_rule')),
    sa.UniqueConstraint('name', name=op.f('uq_commission_rule_name'))
    )
    op.create_table('referral_config',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lock_days', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('max_levels', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('default_clawback_days', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('payout_tax_rate', sa.Numeric(precision=12, scale=8), nullable=False),
    sa.Column('payout_fee_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('lock_days >= 0', name=op.f('ck_referral_config_lock_days_non_negative')),
    sa.CheckConstraint('max_levels IN (1, 2)', name=op.f('ck_referral_config_max_levels_1_or_2')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_config'))
    )
    op.create_table('commission_rule_version',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rule_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('funder_type', sa.String(length=20), nullable=True),
    sa.Column('referrer_kind', sa.String(length=16), nullable=True),
    sa.Column('staff_level', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('basis', sa.String(length=16), nullable=False),
    sa.Column('bounty_event', sa.String(length=24), nullable=True),
    sa.Column('level1_rate', sa.Numeric(precision=12, scale=8), nullable=False),
    sa.Column('level2_rate', sa.Numeric(precision=12, scale=8), nullable=False),
    sa.Column('level1_bounty_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('level2_bounty_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tiers', sa.JSON(), nullable=True),
    sa.Column('per_loan_cap_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('monthly_cap_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('clawback_days', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('created_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_staff_id'], ['staff.id'], name=op.f('fk_commission_rule_version_created_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['rule_id'], ['commission_rule.id'], name=op.f('fk_commission_rule_version_rule_id_commission_rule')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commission_rule_version')),
    sa.UniqueConstraint('rule_id', 'version', name=op.f('uq_commission_rule_version_rule_id_version'))
    )
    op.create_index(op.f('ix_commission_rule_version_rule_id'), 'commission_rule_version', ['rule_id'], unique=False)
    with op.batch_alter_table('commission_rule', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_commission_rule_current_version', 'commission_rule_version',
                                    ['current_version_id'], ['id'])
    op.create_table('payout_batch',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('item_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('total_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('paid_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('paid_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['created_by_staff_id'], ['staff.id'], name=op.f('fk_payout_batch_created_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['paid_by_staff_id'], ['staff.id'], name=op.f('fk_payout_batch_paid_by_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_batch'))
    )
    op.create_table('referrer',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('parent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('payee_name', sa.String(length=60), nullable=True),
    sa.Column('payee_channel', sa.String(length=16), nullable=True),
    sa.Column('payee_bank', sa.String(length=60), nullable=True),
    sa.Column('payee_account_enc', sa.String(length=300), nullable=True),
    sa.Column('payee_account_masked', sa.String(length=40), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('customer', 'agent', 'channel', 'staff')", name=op.f('ck_referrer_kind_valid')),
    sa.CheckConstraint('parent_id IS NULL OR parent_id <> id', name=op.f('ck_referrer_not_own_parent')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_referrer_customer_id_customer')),
    sa.ForeignKeyConstraint(['parent_id'], ['referrer.id'], name=op.f('fk_referrer_parent_id_referrer')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_referrer_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referrer')),
    sa.UniqueConstraint('code', name=op.f('uq_referrer_code')),
    sa.UniqueConstraint('customer_id', name=op.f('uq_referrer_customer_id')),
    sa.UniqueConstraint('staff_id', name=op.f('uq_referrer_staff_id'))
    )
    op.create_index(op.f('ix_referrer_parent_id'), 'referrer', ['parent_id'], unique=False)
    op.create_table('referral_attribution',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('referrer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('locked_until', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('changed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('changed_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_staff_id'], ['staff.id'], name=op.f('fk_referral_attribution_changed_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_referral_attribution_customer_id_customer')),
    sa.ForeignKeyConstraint(['referrer_id'], ['referrer.id'], name=op.f('fk_referral_attribution_referrer_id_referrer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_attribution')),
    sa.UniqueConstraint('customer_id', name=op.f('uq_referral_attribution_customer_id'))
    )
    op.create_index(op.f('ix_referral_attribution_referrer_id'), 'referral_attribution', ['referrer_id'], unique=False)
    op.create_table('withdrawal_request',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('referrer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('payout_batch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('paid_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('deduction_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_withdrawal_request_amount_positive')),
    sa.ForeignKeyConstraint(['decided_by_staff_id'], ['staff.id'], name=op.f('fk_withdrawal_request_decided_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['payout_batch_id'], ['payout_batch.id'], name=op.f('fk_withdrawal_request_payout_batch_id_payout_batch')),
    sa.ForeignKeyConstraint(['referrer_id'], ['referrer.id'], name=op.f('fk_withdrawal_request_referrer_id_referrer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_withdrawal_request'))
    )
    op.create_index(op.f('ix_withdrawal_request_payout_batch_id'), 'withdrawal_request', ['payout_batch_id'], unique=False)
    op.create_index('ix_withdrawal_request_referrer_status', 'withdrawal_request', ['referrer_id', 'status'], unique=False)
    op.create_table('commission_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('referrer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source_event_key', sa.String(length=120), nullable=False),
    sa.Column('level', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('basis_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('rule_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reverses_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('confirms_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('payout_batch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('withdrawal_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('confirmable_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('event_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(kind IN ('accrued', 'confirmed') AND amount >= 0) OR (kind IN ('reversed', 'paid', 'deduction') AND amount <= 0)", name=op.f('ck_commission_entry_amount_sign')),
    sa.CheckConstraint("kind IN ('accrued', 'confirmed', 'reversed', 'paid', 'deduction')", name=op.f('ck_commission_entry_kind_valid')),
    sa.ForeignKeyConstraint(['confirms_entry_id'], ['commission_entry.id'], name=op.f('fk_commission_entry_confirms_entry_id_commission_entry')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_commission_entry_customer_id_customer')),
    sa.ForeignKeyConstraint(['payout_batch_id'], ['payout_batch.id'], name=op.f('fk_commission_entry_payout_batch_id_payout_batch')),
    sa.ForeignKeyConstraint(['referrer_id'], ['referrer.id'], name=op.f('fk_commission_entry_referrer_id_referrer')),
    sa.ForeignKeyConstraint(['reverses_entry_id'], ['commission_entry.id'], name=op.f('fk_commission_entry_reverses_entry_id_commission_entry')),
    sa.ForeignKeyConstraint(['rule_version_id'], ['commission_rule_version.id'], name=op.f('fk_commission_entry_rule_version_id_commission_rule_version')),
    sa.ForeignKeyConstraint(['withdrawal_id'], ['withdrawal_request.id'], name=op.f('fk_commission_entry_withdrawal_id_withdrawal_request')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commission_entry')),
    sa.UniqueConstraint('confirms_entry_id', name=op.f('uq_commission_entry_confirms_entry_id')),
    sa.UniqueConstraint('reverses_entry_id', name=op.f('uq_commission_entry_reverses_entry_id')),
    sa.UniqueConstraint('source_event_key', name=op.f('uq_commission_entry_source_event_key'))
    )
    op.create_index(op.f('ix_commission_entry_customer_id'), 'commission_entry', ['customer_id'], unique=False)
    op.create_index('ix_commission_entry_event_at', 'commission_entry', ['event_at'], unique=False)
    op.create_index(op.f('ix_commission_entry_loan_id'), 'commission_entry', ['loan_id'], unique=False)
    op.create_index(op.f('ix_commission_entry_payout_batch_id'), 'commission_entry', ['payout_batch_id'], unique=False)
    op.create_index('ix_commission_entry_referrer_kind', 'commission_entry', ['referrer_id', 'kind'], unique=False)
    op.create_index(op.f('ix_commission_entry_rule_version_id'), 'commission_entry', ['rule_version_id'], unique=False)
    op.create_index(op.f('ix_commission_entry_withdrawal_id'), 'commission_entry', ['withdrawal_id'], unique=False)
    make_append_only('commission_entry')
    make_append_only('commission_rule_version')


def downgrade() -> None:
    drop_append_only('commission_entry')
    drop_append_only('commission_rule_version')
    with op.batch_alter_table('commission_rule', schema=None) as batch_op:
        batch_op.drop_constraint('fk_commission_rule_current_version', type_='foreignkey')
    op.drop_table('commission_entry')
    op.drop_table('withdrawal_request')
    op.drop_table('referral_attribution')
    op.drop_table('referrer')
    op.drop_table('payout_batch')
    op.drop_table('commission_rule_version')
    op.drop_table('referral_config')
    op.drop_table('commission_rule')
