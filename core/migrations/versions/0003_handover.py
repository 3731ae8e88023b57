"""handover cases, items and WeCom transfers (离职继承 / 在职继承)

Revision ID: 0003_handover
Revises: 0003_import
Create Date: 2026-11-23 18:02:35.676675
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0003_handover'
down_revision = "0003_import"  # one linear chain
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('handover_case',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('from_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('opened_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('opened_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('executed_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('closed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['executed_by'], ['staff.id'], name=op.f('fk_handover_case_executed_by_staff')),
    sa.ForeignKeyConstraint(['from_staff_id'], ['staff.id'], name=op.f('fk_handover_case_from_staff_id_staff')),
    sa.ForeignKeyConstraint(['opened_by'], ['staff.id'], name=op.f('fk_handover_case_opened_by_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handover_case'))
    )
    with op.batch_alter_table('handover_case', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handover_case_from_staff_id'), ['from_staff_id'], unique=False)
        batch_op.create_index('ix_handover_case_status_opened', ['status', 'opened_at'], unique=False)
        batch_op.create_index('uq_handover_case_open_departure', ['from_staff_id'], unique=True, sqlite_where=sa.text("status = 'open' AND kind = 'departure'"), postgresql_where=sa.text("status = 'open' AND kind = 'departure'"))

    op.create_table('handover_item',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('to_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('to_pool_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('skip_reason', sa.String(length=40), nullable=True),
    sa.Column('decided_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['handover_case.id'], name=op.f('fk_handover_item_case_id_handover_case'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_handover_item_customer_id_customer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_pool_id'], ['crm_pool.id'], name=op.f('fk_handover_item_to_pool_id_crm_pool')),
    sa.ForeignKeyConstraint(['to_staff_id'], ['staff.id'], name=op.f('fk_handover_item_to_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handover_item')),
    sa.UniqueConstraint('case_id', 'customer_id', name=op.f('uq_handover_item_case_id_customer_id'))
    )
    with op.batch_alter_table('handover_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handover_item_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_handover_item_to_staff_id'), ['to_staff_id'], unique=False)

    op.create_table('wecom_transfer',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('external_userid', sa.String(length=64), nullable=False),
    sa.Column('handover_userid', sa.String(length=64), nullable=False),
    sa.Column('takeover_userid', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('batch_id', sa.String(length=40), nullable=True),
    sa.Column('errcode', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('requested_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['handover_case.id'], name=op.f('fk_wecom_transfer_case_id_handover_case'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_wecom_transfer_customer_id_customer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wecom_transfer'))
    )
    with op.batch_alter_table('wecom_transfer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wecom_transfer_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index('ix_wecom_transfer_case_status', ['case_id', 'status'], unique=False)
        batch_op.create_index('ix_wecom_transfer_customer_kind_at', ['customer_id', 'kind', 'requested_at'], unique=False)
        batch_op.create_index('ix_wecom_transfer_external_takeover', ['external_userid', 'takeover_userid'], unique=False)
        batch_op.create_index('uq_wecom_transfer_active_customer', ['customer_id'], unique=True, sqlite_where=sa.text("status IN ('requested', 'waiting')"), postgresql_where=sa.text("status IN ('requested', 'waiting')"))

    op.create_table('wecom_transfer_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('transfer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('actor_label', sa.String(length=120), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('errcode', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['transfer_id'], ['wecom_transfer.id'], name=op.f('fk_wecom_transfer_event_transfer_id_wecom_transfer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wecom_transfer_event'))
    )
    with op.batch_alter_table('wecom_transfer_event', schema=None) as batch_op:
        batch_op.create_index('ix_wecom_transfer_event_transfer', ['transfer_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('wecom_transfer_event', schema=None) as batch_op:
        batch_op.drop_index('ix_wecom_transfer_event_transfer')

    op.drop_table('wecom_transfer_event')
    with op.batch_alter_table('wecom_transfer', schema=None) as batch_op:
        batch_op.drop_index('uq_wecom_transfer_active_customer', sqlite_where=sa.text("status IN ('requested', 'waiting')"), postgresql_where=sa.text("status IN ('requested', 'waiting')"))
        batch_op.drop_index('ix_wecom_transfer_external_takeover')
        batch_op.drop_index('ix_wecom_transfer_customer_kind_at')
        batch_op.drop_index('ix_wecom_transfer_case_status')
        batch_op.drop_index(batch_op.f('ix_wecom_transfer_batch_id'))

    op.drop_table('wecom_transfer')
    with op.batch_alter_table('handover_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handover_item_to_staff_id'))
        batch_op.drop_index(batch_op.f('ix_handover_item_customer_id'))

    op.drop_table('handover_item')
    with op.batch_alter_table('handover_case', schema=None) as batch_op:
        batch_op.drop_index('uq_handover_case_open_departure', sqlite_where=sa.text("status = 'open' AND kind = 'departure'"), postgresql_where=sa.text("status = 'open' AND kind = 'departure'"))
        batch_op.drop_index('ix_handover_case_status_opened')
        batch_op.drop_index(batch_op.f('ix_handover_case_from_staff_id'))

    op.drop_table('handover_case')
