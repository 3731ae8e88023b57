"""customer index shapes: blind indexes compared bytewise; owner, pool and follow-up indexes partial;
the unused owner-history index on to_owner_id dropped

* ``phone_index`` and ``id_number_index`` hold HMAC hex digests. Under the database's linguistic
  collation every comparison in their unique indexes goes through strcoll(); ``COLLATE "C"``
  compares bytes. Only equality is ever asked of them (dedup, lookups), which is the same under
  any deterministic collation, so no query changes meaning; both indexes are rebuilt.
* ``ix_customer_owner_status`` / ``ix_customer_pool_status`` only ``WHERE owner_id IS NOT NULL`` /
  ``WHERE pool_id IS NOT NULL``: a customer is owned or in a pool, so every customer held an
  index entry it never needed in one of them. ``ix_customer_next_followup`` only
  ``WHERE next_followup_at IS NOT NULL``: a new lead has no follow-up planned. Every query on these
  columns filters them with an operator (``owner_id = :id``, ``owner_id IN (…)``, a join on them,
  ``next_followup_at < :end``) that implies IS NOT NULL, so the planner keeps using them.
* ``ix_customer_owner_change_to_owner_id``: no query reads owner history by new owner (it is read
  per customer, ``ix_owner_change_customer``); every change of hands paid for it.

SQLite: no collation change (the variant is PostgreSQL only); indexes recreated the same way.

Revision ID: 0007_customer_index_shapes
Revises: 0006_import_write_path
Create Date: 2026-11-24 10:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db  # noqa: F401

revision = '0007_customer_index_shapes'
down_revision = '0006_import_write_path'  # one linear chain
branch_labels = None
depends_on = None

PARTIAL = (
    ('ix_customer_owner_status', ['owner_id', 'status'], 'owner_id IS NOT NULL'),
    ('ix_customer_pool_status', ['pool_id', 'status'], 'pool_id IS NOT NULL'),
    ('ix_customer_next_followup', ['next_followup_at'], 'next_followup_at IS NOT NULL'),
)
BLIND = ('phone_index', 'id_number_index')


def upgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        for name, columns, where in PARTIAL:
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False, postgresql_where=sa.text(where),
                                  sqlite_where=sa.text(where))
    if op.get_bind().dialect.name == 'postgresql':
        for column in BLIND:
            op.alter_column('customer', column, type_=sa.String(64, collation='C'), existing_nullable=True)
    with op.batch_alter_table('customer_owner_change', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_owner_change_to_owner_id')


def downgrade() -> None:
    with op.batch_alter_table('customer_owner_change', schema=None) as batch_op:
        batch_op.create_index('ix_customer_owner_change_to_owner_id', ['to_owner_id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        for column in BLIND:
            op.alter_column('customer', column, type_=sa.String(64), existing_nullable=True)
    with op.batch_alter_table('customer', schema=None) as batch_op:
        for name, columns, _where in PARTIAL:
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False)
