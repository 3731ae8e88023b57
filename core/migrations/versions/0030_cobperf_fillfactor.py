"""close of business: room on the loans' and bills' pages for the nightly rewrite of their rows (fillfactor 85)

The close of business rewrites every bill of each rolled-over loan (``penalty_through_date``) and the loan row
itself; with free room on the page PostgreSQL keeps the new row version there (a heap-only update) instead of
inserting a new entry into each of the table's indexes. Pages written before this migration keep their fill
until the table is rewritten (``VACUUM FULL`` or pg_repack, out of hours). PostgreSQL only; SQLite has no
such setting.

Revision ID: 0030_cobperf_fillfactor
Revises: 0030_roles_custom_roles
Create Date: 2026-12-06 14:50:00.000000
"""
from alembic import op

revision = '0030_cobperf_fillfactor'
down_revision = '0030_roles_custom_roles'
branch_labels = None
depends_on = None

TABLES = ('lending_loan', 'lending_loan_installment')


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in TABLES:
            op.execute(f'ALTER TABLE {table} SET (fillfactor = 85)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in TABLES:
            op.execute(f'ALTER TABLE {table} RESET (fillfactor)')
