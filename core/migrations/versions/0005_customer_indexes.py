"""customer: drop low-value single-column indexes (stage, customer_type, source, grade, region, name_initials)

Every new customer paid for them on insert (and on each change of the column) while no query needs
them: the values are few (stage, type, source, grade) so a filter on one of them alone reads a large
part of the table anyway, and lists are driven by the scope (owner, pool) indexes; a region or
region + grade filter is served by ``ix_customer_segment_region_grade`` (0003_tags); the initials
search is a ``LIKE 'zs%'`` that a plain btree under a non-C collation cannot serve.

Revision ID: 0005_customer_indexes
Revises: 0003_mp
Create Date: 2026-11-23 19:05:00.000000
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op

import core.db  # noqa: F401

revision = '0005_customer_indexes'
down_revision = "0003_mp"  # one linear chain
branch_labels = None
depends_on = None

DROPPED = (
    ('ix_customer_stage', 'stage'),
    ('ix_customer_customer_type', 'customer_type'),
    ('ix_customer_source', 'source'),
    ('ix_customer_grade', 'grade'),
    ('ix_customer_region', 'region'),
    ('ix_customer_name_initials', 'name_initials'),
)


def upgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        for name, _column in DROPPED:
            batch_op.drop_index(name)


def downgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        for name, column in DROPPED:
            batch_op.create_index(name, [column], unique=False)
