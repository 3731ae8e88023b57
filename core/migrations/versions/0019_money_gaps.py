"""money gaps: a deposit, or a settlement's WeChat part, paid through WeChat Pay (finance.fee) names its payment once; a deposit refund
paid back the way it came (原路退回: refunding / failed, its out_refund_no); a refund's owner reference and
the provider's final answer; indexes for the finance performance report's date ranges

Revision ID: 0019_money_gaps
Revises: 0013_servicing_completion
Create Date: 2026-12-06 11:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0019_money_gaps'
down_revision = '0013_servicing_completion'
branch_labels = None
depends_on = None

_REFUND_STATUS_OLD = "status IN ('requested', 'confirmed', 'rejected')"
_REFUND_STATUS_NEW = "status IN ('requested', 'refunding', 'confirmed', 'rejected', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table('payment_refund', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_status', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('refund_ref', sa.String(length=64), nullable=True))

    with op.batch_alter_table('finance_deposit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_finance_deposit_payment_order_id'), ['payment_order_id'])
        batch_op.create_foreign_key(batch_op.f('fk_finance_deposit_payment_order_id_payment_order'), 'payment_order',
                                    ['payment_order_id'], ['id'])

    with op.batch_alter_table('finance_settlement_payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_finance_settlement_payment_payment_order_id'),
                                          ['payment_order_id'])
        batch_op.create_foreign_key(batch_op.f('fk_finance_settlement_payment_payment_order_id_payment_order'),
                                    'payment_order', ['payment_order_id'], ['id'])

    with op.batch_alter_table('finance_deposit_refund', schema=None) as batch_op:
        batch_op.add_column(sa.Column('out_refund_no', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_finance_deposit_refund_out_refund_no'), ['out_refund_no'])
        batch_op.drop_constraint(batch_op.f('ck_finance_deposit_refund_status_known'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_finance_deposit_refund_status_known'), _REFUND_STATUS_NEW)

    with op.batch_alter_table('finance_agreement', schema=None) as batch_op:
        batch_op.create_index('ix_finance_agreement_signed', ['signed_date', 'sales_staff_id'], unique=False)
    with op.batch_alter_table('finance_settlement', schema=None) as batch_op:
        batch_op.create_index('ix_finance_settlement_disbursed', ['disbursed_date'], unique=False)
        batch_op.create_index('ix_finance_settlement_settled', ['settled_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('finance_settlement', schema=None) as batch_op:
        batch_op.drop_index('ix_finance_settlement_settled')
        batch_op.drop_index('ix_finance_settlement_disbursed')
    with op.batch_alter_table('finance_agreement', schema=None) as batch_op:
        batch_op.drop_index('ix_finance_agreement_signed')

    with op.batch_alter_table('finance_deposit_refund', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_finance_deposit_refund_status_known'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_finance_deposit_refund_status_known'), _REFUND_STATUS_OLD)
        batch_op.drop_constraint(batch_op.f('uq_finance_deposit_refund_out_refund_no'), type_='unique')
        batch_op.drop_column('out_refund_no')

    with op.batch_alter_table('finance_settlement_payment', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_finance_settlement_payment_payment_order_id_payment_order'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_finance_settlement_payment_payment_order_id'), type_='unique')
        batch_op.drop_column('payment_order_id')

    with op.batch_alter_table('finance_deposit', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_finance_deposit_payment_order_id_payment_order'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_finance_deposit_payment_order_id'), type_='unique')
        batch_op.drop_column('payment_order_id')

    with op.batch_alter_table('payment_refund', schema=None) as batch_op:
        batch_op.drop_column('refund_ref')
        batch_op.drop_column('provider_status')
