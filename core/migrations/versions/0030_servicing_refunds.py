"""servicing: refunds of an overpayment (part or all of a repayment's credit 溢缴款) beside the refund of a reversed
repayment, a failed refund retried (one live refund per reversed repayment: a partial unique index instead of the
unique repayment_id), a restructure at a new rate or with the overdue amounts capitalised (a ``capitalisation``
entry in the repayment ledger)

Revision ID: 0030_servicing_refunds
Revises: 0026_application_files
Create Date: 2026-12-06 14:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

from core.migrations.helpers import drop_append_only, make_append_only

revision = '0030_servicing_refunds'
down_revision = '0026_application_files'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
LIVE = "kind = 'reversed' AND status <> 'failed'"


def upgrade() -> None:
    with op.batch_alter_table('lending_repayment_refund', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=12), server_default='reversed', nullable=False))
        batch_op.create_check_constraint('kind_known', "kind IN ('reversed', 'overpayment')")
        batch_op.drop_constraint(batch_op.f('uq_lending_repayment_refund_repayment_id'), type_='unique')
        batch_op.create_index(batch_op.f('ix_lending_repayment_refund_repayment_id'), ['repayment_id'], unique=False)
        batch_op.create_index('uq_lending_repayment_refund_live_reversal', ['repayment_id'], unique=True,
                              postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))
    drop_append_only('lending_repayment')  # SQLite rebuilds the table: its triggers go with it
    with op.batch_alter_table('lending_repayment', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=12), type_=sa.String(length=16),
                              existing_nullable=False)
        batch_op.alter_column('purpose', existing_type=sa.String(length=12), type_=sa.String(length=16),
                              existing_nullable=False, existing_server_default='installment')
        batch_op.drop_constraint(batch_op.f('ck_lending_repayment_kind_known'), type_='check')
        batch_op.create_check_constraint('kind_known', "kind IN ('repayment', 'reversal', 'waiver', 'capitalisation')")
        batch_op.drop_constraint(batch_op.f('ck_lending_repayment_purpose_known'), type_='check')
        batch_op.create_check_constraint(
            'purpose_known', "purpose IN ('installment', 'prepayment', 'payoff', 'waiver', 'capitalisation')")
    make_append_only('lending_repayment')
    with op.batch_alter_table('lending_restructure', schema=None) as batch_op:
        batch_op.add_column(sa.Column('annual_rate', sa.Numeric(precision=12, scale=8), nullable=True))
        batch_op.add_column(sa.Column('capitalised_amount', ID, server_default='0', nullable=False))
        batch_op.add_column(sa.Column('capitalisation_id', ID, nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_lending_restructure_capitalisation_id_lending_repayment'),
                                    'lending_repayment', ['capitalisation_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('lending_restructure', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_lending_restructure_capitalisation_id_lending_repayment'),
                                 type_='foreignkey')
        batch_op.drop_column('capitalisation_id')
        batch_op.drop_column('capitalised_amount')
        batch_op.drop_column('annual_rate')
    drop_append_only('lending_repayment')
    with op.batch_alter_table('lending_repayment', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_lending_repayment_purpose_known'), type_='check')
        batch_op.create_check_constraint('purpose_known', "purpose IN ('installment', 'prepayment', 'payoff', 'waiver')")
        batch_op.drop_constraint(batch_op.f('ck_lending_repayment_kind_known'), type_='check')
        batch_op.create_check_constraint('kind_known', "kind IN ('repayment', 'reversal', 'waiver')")
        batch_op.alter_column('purpose', existing_type=sa.String(length=16), type_=sa.String(length=12),
                              existing_nullable=False, existing_server_default='installment')
        batch_op.alter_column('kind', existing_type=sa.String(length=16), type_=sa.String(length=12),
                              existing_nullable=False)
    make_append_only('lending_repayment')
    with op.batch_alter_table('lending_repayment_refund', schema=None) as batch_op:
        batch_op.drop_index('uq_lending_repayment_refund_live_reversal')
        batch_op.drop_index(batch_op.f('ix_lending_repayment_refund_repayment_id'))
        batch_op.create_unique_constraint(batch_op.f('uq_lending_repayment_refund_repayment_id'), ['repayment_id'])
        batch_op.drop_constraint(batch_op.f('ck_lending_repayment_refund_kind_known'), type_='check')
        batch_op.drop_column('kind')
