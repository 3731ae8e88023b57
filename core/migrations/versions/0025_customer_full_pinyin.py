"""customer.name_pinyin: the name's full pinyin (张伟 -> zhangwei), so a search for `zhangwei` finds him as `zw`
does; a prefix index on PostgreSQL like the initials'. Existing names are filled in batches.

Revision ID: 0025_customer_full_pinyin
Revises: 0024_borrower_wecom_reminders
Create Date: 2026-12-06 15:00:00.000000
"""
import re

import sqlalchemy as sa
from alembic import op
from pypinyin import Style, lazy_pinyin

revision = '0025_customer_full_pinyin'
down_revision = '0024_borrower_wecom_reminders'
branch_labels = None
depends_on = None

BATCH = 5000


def _pinyin(name: str) -> str:  # crm.customers.full_pinyin as of this revision
    out = "".join(lazy_pinyin(name, style=Style.NORMAL, errors="default", v_to_u=False))
    return re.sub(r"[^0-9a-z]", "", out.lower())[:255]


def upgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_pinyin', sa.String(length=255), nullable=False, server_default=''))
    op.create_index('ix_customer_name_pinyin', 'customer', ['name_pinyin'], unique=False,
                    postgresql_ops={'name_pinyin': 'varchar_pattern_ops'})
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(sa.text("SELECT id, name FROM customer WHERE id > :last AND name <> '' ORDER BY id "
                                    "LIMIT :n"), {"last": last, "n": BATCH}).all()
        if not rows:
            break
        conn.execute(sa.text("UPDATE customer SET name_pinyin = :p WHERE id = :id"),
                     [{"id": r.id, "p": _pinyin(r.name)} for r in rows])
        last = rows[-1].id


def downgrade() -> None:
    op.drop_index('ix_customer_name_pinyin', table_name='customer')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_column('name_pinyin')
