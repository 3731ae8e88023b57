"""import jobs

Revision ID: 0003_import
Revises: 0003_work
Create Date: 2026-11-23 18:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0003_import'
down_revision = "0003_work"  # one linear chain
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('crm_import_job',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('file_path', sa.String(length=500), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('assign_mode', sa.String(length=30), nullable=True),
    sa.Column('pool_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('total', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('processed', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('duplicates_in_file', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('duplicates_existing', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('collisions', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('errors', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('assigned', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('report_path', sa.String(length=500), nullable=True),
    sa.Column('message', sa.String(length=1000), nullable=True),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['staff.id'], name=op.f('fk_crm_import_job_created_by_staff')),
    sa.ForeignKeyConstraint(['pool_id'], ['crm_pool.id'], name=op.f('fk_crm_import_job_pool_id_crm_pool')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_import_job'))
    )
    with op.batch_alter_table('crm_import_job', schema=None) as batch_op:
        batch_op.create_index('ix_crm_import_job_created', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_crm_import_job_created_by'), ['created_by'], unique=False)
        batch_op.create_index(batch_op.f('ix_crm_import_job_sha256'), ['sha256'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('crm_import_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_import_job_sha256'))
        batch_op.drop_index(batch_op.f('ix_crm_import_job_created_by'))
        batch_op.drop_index('ix_crm_import_job_created')

    op.drop_table('crm_import_job')
