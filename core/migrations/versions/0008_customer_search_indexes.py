"""customer search: pinyin-initials prefix index (pattern operator class) and a partial index over
the names that contain a latin letter

The list search sends latin letters as ``name_initials LIKE 'zs%' OR name LIKE '%zs%'``, the 360
search box and chat commands as ``name_initials LIKE 'zs%'``: both read every customer (a plain
btree cannot serve LIKE under the database's linguistic collation, and 0005 dropped the one there
was). ``varchar_pattern_ops`` serves the prefix. The name half of the OR can only match a name that
contains a latin letter, and the query now says so (``crm.models.HasLatinLetter``, the same words as
this partial index's predicate), so PostgreSQL answers the OR with a BitmapOr of the two indexes
instead of a sequential scan. Chinese names (nearly all) cost the partial index nothing on insert.

Revision ID: 0008_customer_search_indexes
Revises: 0007_customer_index_shapes
Create Date: 2026-11-24 11:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db  # noqa: F401

revision = '0008_customer_search_indexes'
down_revision = '0007_customer_index_shapes'  # one linear chain
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.create_index('ix_customer_name_initials', ['name_initials'], unique=False,
                              postgresql_ops={'name_initials': 'varchar_pattern_ops'})
        batch_op.create_index('ix_customer_latin_name', ['id'], unique=False,
                              postgresql_where=sa.text("name ~ '[A-Za-z]'"),
                              sqlite_where=sa.text("name GLOB '*[A-Za-z]*'"))


def downgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_latin_name')
        batch_op.drop_index('ix_customer_name_initials')
