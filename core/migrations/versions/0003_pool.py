"""pool

Revision ID: 0003_pool
Revises: 0003_tags
Create Date: 2026-11-23 18:01:55.852871
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0003_pool'
down_revision = "0003_tags"  # one linear chain
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('crm_allocation_cursor',
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('last_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_crm_allocation_cursor'))
    )
    op.create_table('crm_allocation_rule',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('source_pattern', sa.String(length=40), nullable=True),
    sa.Column('pool_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('department_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('target_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('priority', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("mode <> 'manual' OR target_staff_id IS NOT NULL", name=op.f('ck_crm_allocation_rule_manual_needs_target')),
    sa.CheckConstraint('source_pattern IS NOT NULL OR pool_id IS NOT NULL', name=op.f('ck_crm_allocation_rule_matches_something')),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_crm_allocation_rule_department_id_department')),
    sa.ForeignKeyConstraint(['pool_id'], ['crm_pool.id'], name=op.f('fk_crm_allocation_rule_pool_id_crm_pool'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_staff_id'], ['staff.id'], name=op.f('fk_crm_allocation_rule_target_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_allocation_rule'))
    )
    with op.batch_alter_table('crm_allocation_rule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_allocation_rule_pool_id'), ['pool_id'], unique=False)

    op.create_table('crm_claim_counter',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('claim_date', sa.Date(), nullable=False),
    sa.Column('claims', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_crm_claim_counter_staff_id_staff'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_claim_counter')),
    sa.UniqueConstraint('staff_id', 'claim_date', name=op.f('uq_crm_claim_counter_staff_id_claim_date'))
    )
    op.create_table('crm_pool_setting',
    sa.Column('pool_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('daily_claim_cap', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('check_private_cap', sa.Boolean(), nullable=False),
    sa.Column('cooldown_days', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('protection_days', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('cooldown_days >= 0', name=op.f('ck_crm_pool_setting_cooldown_days_non_negative')),
    sa.CheckConstraint('daily_claim_cap >= 0', name=op.f('ck_crm_pool_setting_daily_claim_cap_non_negative')),
    sa.CheckConstraint('protection_days >= 0', name=op.f('ck_crm_pool_setting_protection_days_non_negative')),
    sa.ForeignKeyConstraint(['pool_id'], ['crm_pool.id'], name=op.f('fk_crm_pool_setting_pool_id_crm_pool'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pool_id', name=op.f('pk_crm_pool_setting'))
    )
    op.create_table('crm_recycle_rule',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('department_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('target_pool_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('combinator', sa.String(length=3), nullable=False),
    sa.Column('no_followup_days', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('not_converted_days', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('converted_stage', sa.String(length=16), nullable=True),
    sa.Column('grades', sa.String(length=80), nullable=True),
    sa.Column('stages', sa.String(length=200), nullable=True),
    sa.Column('warn_hours', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("combinator IN ('and', 'or')", name=op.f('ck_crm_recycle_rule_combinator_known')),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_crm_recycle_rule_department_id_department')),
    sa.ForeignKeyConstraint(['target_pool_id'], ['crm_pool.id'], name=op.f('fk_crm_recycle_rule_target_pool_id_crm_pool')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_recycle_rule'))
    )
    op.create_table('crm_staff_skill',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_type', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_crm_staff_skill_staff_id_staff'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_staff_skill')),
    sa.UniqueConstraint('staff_id', 'customer_type', name=op.f('uq_crm_staff_skill_staff_id_customer_type'))
    )
    with op.batch_alter_table('crm_staff_skill', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_staff_skill_customer_type'), ['customer_type'], unique=False)

    op.create_table('crm_allocation_member',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rule_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['rule_id'], ['crm_allocation_rule.id'], name=op.f('fk_crm_allocation_member_rule_id_crm_allocation_rule'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_crm_allocation_member_staff_id_staff'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_allocation_member')),
    sa.UniqueConstraint('rule_id', 'staff_id', name=op.f('uq_crm_allocation_member_rule_id_staff_id'))
    )
    with op.batch_alter_table('crm_allocation_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_allocation_member_staff_id'), ['staff_id'], unique=False)

    op.create_table('crm_recycle_warning',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cycle_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('rule_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('owner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('warned_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_crm_recycle_warning_customer_id_customer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['staff.id'], name=op.f('fk_crm_recycle_warning_owner_id_staff')),
    sa.ForeignKeyConstraint(['rule_id'], ['crm_recycle_rule.id'], name=op.f('fk_crm_recycle_warning_rule_id_crm_recycle_rule'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_recycle_warning')),
    sa.UniqueConstraint('customer_id', 'cycle_at', name=op.f('uq_crm_recycle_warning_customer_id_cycle_at'))
    )
    with op.batch_alter_table('crm_recycle_warning', schema=None) as batch_op:
        batch_op.create_index('ix_recycle_warning_rule', ['rule_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('crm_recycle_warning', schema=None) as batch_op:
        batch_op.drop_index('ix_recycle_warning_rule')

    op.drop_table('crm_recycle_warning')
    with op.batch_alter_table('crm_allocation_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_allocation_member_staff_id'))

    op.drop_table('crm_allocation_member')
    with op.batch_alter_table('crm_staff_skill', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_staff_skill_customer_type'))

    op.drop_table('crm_staff_skill')
    op.drop_table('crm_recycle_rule')
    op.drop_table('crm_pool_setting')
    op.drop_table('crm_claim_counter')
    with op.batch_alter_table('crm_allocation_rule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_allocation_rule_pool_id'))

    op.drop_table('crm_allocation_rule')
    op.drop_table('crm_allocation_cursor')
