"""lending_application_file: files kept with an application (uploaded in the console, or the mini-program's ID
photos carried over at submission), encrypted on disk by core.sealed_files

Revision ID: 0026_application_files
Revises: 0025_customer_full_pinyin
Create Date: 2026-12-06 15:10:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0026_application_files'
down_revision = '0025_customer_full_pinyin'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'lending_application_file',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('application_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('file_name', sa.String(length=120), nullable=False),
        sa.Column('content_type', sa.String(length=40), nullable=False),
        sa.Column('size_bytes', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('storage_name', sa.String(length=120), nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['application_id'], ['lending_application.id'],
                                name=op.f('fk_lending_application_file_application_id_lending_application')),
        sa.ForeignKeyConstraint(['by_staff_id'], ['staff.id'], name=op.f('fk_lending_application_file_by_staff_id_staff')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_lending_application_file')),
    )
    op.create_index('ix_lending_application_file_application', 'lending_application_file', ['application_id'])


def downgrade() -> None:
    op.drop_index('ix_lending_application_file_application', table_name='lending_application_file')
    op.drop_table('lending_application_file')
