"""finance_settlement.charged_agreement_version: the agreement's version the charge was computed from, so that
结单 is refused when an amendment was confirmed after the charge (the charged figures would be stale)

Revision ID: 0031_finfix_charged_version
Revises: 0030_snaphist_snapshot_source
Create Date: 2026-12-06 18:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0031_finfix_charged_version'
down_revision = '0031_payfix_nonce_digest'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('finance_settlement') as batch:
        batch.add_column(sa.Column('charged_agreement_version', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('finance_settlement') as batch:
        batch.drop_column('charged_agreement_version')
