"""servicing, more: backdated correction rows (lending_repayment_allocation.replay_id) and refunds of reversed
repayments (lending_repayment_refund), extensions and restructures (lending_restructure), the COB's
interest accrual per business date and product version (lending_interest_accrual)

Revision ID: 0020_servicing_more
Revises: 0019_money_gaps
Create Date: 2026-12-06 11:45:00
"""
import sqlalchemy as sa
from alembic import op

import core.db
from core.migrations.helpers import drop_append_only, make_append_only

revision = '0020_servicing_more'
down_revision = '0019_money_gaps'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    drop_append_only('lending_repayment_allocation')  # SQLite rebuilds the table: its triggers go with it
    with op.batch_alter_table('lending_repayment_allocation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replay_id', ID, nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_lending_repayment_allocation_replay_id_lending_repayment'),
                                    'lending_repayment', ['replay_id'], ['id'])
    make_append_only('lending_repayment_allocation')
    op.create_table('lending_repayment_refund',
    sa.Column('id', ID, nullable=False),
    sa.Column('loan_id', ID, nullable=False),
    sa.Column('repayment_id', ID, nullable=False),
    sa.Column('amount', ID, nullable=False),
    sa.Column('route', sa.String(length=10), nullable=False),
    sa.Column('payment_refund_id', ID, nullable=True),
    sa.Column('external_reference', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('by_staff_id', ID, nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_lending_repayment_refund_amount_positive')),
    sa.CheckConstraint("route IN ('payments', 'manual')", name=op.f('ck_lending_repayment_refund_route_known')),
    sa.CheckConstraint("status IN ('submitted', 'succeeded', 'failed')", name=op.f('ck_lending_repayment_refund_status_known')),
    sa.ForeignKeyConstraint(['by_staff_id'], ['staff.id'], name=op.f('fk_lending_repayment_refund_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['loan_id'], ['lending_loan.id'], name=op.f('fk_lending_repayment_refund_loan_id_lending_loan')),
    sa.ForeignKeyConstraint(['payment_refund_id'], ['payment_refund.id'], name=op.f('fk_lending_repayment_refund_payment_refund_id_payment_refund')),
    sa.ForeignKeyConstraint(['repayment_id'], ['lending_repayment.id'], name=op.f('fk_lending_repayment_refund_repayment_id_lending_repayment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lending_repayment_refund')),
    sa.UniqueConstraint('external_reference', name=op.f('uq_lending_repayment_refund_external_reference')),
    sa.UniqueConstraint('repayment_id', name=op.f('uq_lending_repayment_refund_repayment_id'))
    )
    with op.batch_alter_table('lending_repayment_refund', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lending_repayment_refund_loan_id'), ['loan_id'], unique=False)
    op.create_table('lending_restructure',
    sa.Column('id', ID, nullable=False),
    sa.Column('loan_id', ID, nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('first_period', ID, nullable=False),
    sa.Column('periods', ID, nullable=False),
    sa.Column('balance_amount', ID, nullable=False),
    sa.Column('apr_rate', sa.Numeric(precision=12, scale=8), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('requested_by_staff_id', ID, nullable=True),
    sa.Column('requested_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by_staff_id', ID, nullable=True),
    sa.Column('decided_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.String(length=300), nullable=True),
    sa.Column('schedule_version_id', ID, nullable=True),
    sa.CheckConstraint("kind IN ('extension', 'restructure')", name=op.f('ck_lending_restructure_kind_known')),
    sa.CheckConstraint("status IN ('requested', 'approved', 'rejected')", name=op.f('ck_lending_restructure_status_known')),
    sa.CheckConstraint('periods > 0', name=op.f('ck_lending_restructure_periods_positive')),
    sa.ForeignKeyConstraint(['decided_by_staff_id'], ['staff.id'], name=op.f('fk_lending_restructure_decided_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['loan_id'], ['lending_loan.id'], name=op.f('fk_lending_restructure_loan_id_lending_loan')),
    sa.ForeignKeyConstraint(['requested_by_staff_id'], ['staff.id'], name=op.f('fk_lending_restructure_requested_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['schedule_version_id'], ['lending_schedule_version.id'], name=op.f('fk_lending_restructure_schedule_version_id_lending_schedule_version')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lending_restructure'))
    )
    with op.batch_alter_table('lending_restructure', schema=None) as batch_op:
        batch_op.create_index('ix_lending_restructure_loan_status', ['loan_id', 'status'], unique=False)
    op.create_table('lending_interest_accrual',
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('product_version_id', ID, nullable=False),
    sa.Column('loans', ID, nullable=False),
    sa.Column('accrued_amount', ID, nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['product_version_id'], ['lending_product_version.id'], name=op.f('fk_lending_interest_accrual_product_version_id_lending_product_version')),
    sa.PrimaryKeyConstraint('business_date', 'product_version_id', name=op.f('pk_lending_interest_accrual'))
    )


def downgrade() -> None:
    op.drop_table('lending_interest_accrual')
    with op.batch_alter_table('lending_restructure', schema=None) as batch_op:
        batch_op.drop_index('ix_lending_restructure_loan_status')
    op.drop_table('lending_restructure')
    with op.batch_alter_table('lending_repayment_refund', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lending_repayment_refund_loan_id'))
    op.drop_table('lending_repayment_refund')
    drop_append_only('lending_repayment_allocation')
    with op.batch_alter_table('lending_repayment_allocation', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_lending_repayment_allocation_replay_id_lending_repayment'),
                                 type_='foreignkey')
        batch_op.drop_column('replay_id')
    make_append_only('lending_repayment_allocation')
