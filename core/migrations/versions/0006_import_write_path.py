"""customer write path: no foreign keys on the append-only owner history and timeline; the
mostly-NULL identifiers unique where present (partial unique indexes)

Foreign keys dropped (customer_owner_change: customer_id, from/to_owner_id, from/to_pool_id,
by_staff_id; customer_event: customer_id, actor_staff_id). PostgreSQL checks a foreign key row by
row with a trigger that looks the parent up and locks it (``FOR KEY SHARE``); on a lead import
these eight checks were half of the database's time per new customer (BENCHMARKS.md, 19:37). They
buy little here: both tables are append-only facts, written in the same transaction as the customer
change they record, from ids the writer has just created, locked or read, and never updated. No
code deletes a customer (the ``ON DELETE CASCADE`` never fired), staff are deactivated, never
deleted, and a history row naming a pool or a person must outlive them. The indexes stay
(``ix_owner_change_customer``, ``ix_customer_owner_change_to_owner_id``,
``ix_customer_event_customer_at``). The customer's own keys (owner, pool, grade) stay checked.

Partial unique indexes: ``id_number_index``, ``wecom_external_userid``, ``wechat_unionid`` and
``wechat_openid`` are NULL for most customers, and a full unique index holds an entry for every NULL
(four index insertions per imported lead for nothing). ``UNIQUE … WHERE col IS NOT NULL`` enforces
exactly the same rule (NULLs never collided) and keeps the index names. What relies on them: every
``INSERT … ON CONFLICT DO NOTHING`` on customer names no conflict target, so it is answered by any
unique index, partial ones included; intake catches the IntegrityError a partial unique index raises
like a constraint's; lookups (``col = :value``) imply ``col IS NOT NULL``, so the planner uses them.
``phone_index`` stays a full unique constraint (nearly every customer has a phone).

SQLite: the tables are rebuilt (batch mode); ``core/migrations/env.py`` turns SQLite's foreign-key
enforcement off while migrating, so rebuilding ``customer`` cascades nothing.

Revision ID: 0006_import_write_path
Revises: 0005_customer_indexes
Create Date: 2026-11-24 09:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db  # noqa: F401

revision = '0006_import_write_path'
down_revision = '0006_servicing'  # one linear chain
branch_labels = None
depends_on = None

OWNER_CHANGE_FKS = (
    ('customer_id', 'customer', 'CASCADE'),
    ('from_owner_id', 'staff', None),
    ('to_owner_id', 'staff', None),
    ('from_pool_id', 'crm_pool', None),
    ('to_pool_id', 'crm_pool', None),
    ('by_staff_id', 'staff', None),
)
EVENT_FKS = (
    ('customer_id', 'customer', 'CASCADE'),
    ('actor_staff_id', 'staff', None),
)
PARTIAL_UNIQUE = ('id_number_index', 'wecom_external_userid', 'wechat_unionid', 'wechat_openid')


def _fk_name(table: str, column: str, referred: str) -> str:
    return f'fk_{table}_{column}_{referred}'


def upgrade() -> None:
    for table, fks in (('customer_owner_change', OWNER_CHANGE_FKS), ('customer_event', EVENT_FKS)):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, referred, _ondelete in fks:
                batch_op.drop_constraint(_fk_name(table, column, referred), type_='foreignkey')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        for column in PARTIAL_UNIQUE:
            batch_op.drop_constraint(f'uq_customer_{column}', type_='unique')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        for column in PARTIAL_UNIQUE:
            where = sa.text(f'{column} IS NOT NULL')
            batch_op.create_index(f'uq_customer_{column}', [column], unique=True, postgresql_where=where,
                                  sqlite_where=where)


def downgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        for column in PARTIAL_UNIQUE:
            batch_op.drop_index(f'uq_customer_{column}')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        for column in PARTIAL_UNIQUE:
            batch_op.create_unique_constraint(f'uq_customer_{column}', [column])
    for table, fks in (('customer_owner_change', OWNER_CHANGE_FKS), ('customer_event', EVENT_FKS)):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, referred, ondelete in fks:
                batch_op.create_foreign_key(_fk_name(table, column, referred), referred, [column], ['id'],
                                            ondelete=ondelete)
