"""customer list under load: the search by the last four phone digits reads an expression index; the sort by
last update reads an index on updated_at

``phone_masked LIKE '%1380'`` cannot use a btree: a manager's or supervisor's search read every customer of their
department (0.6-4.5 s on 1,000,000 customers; a search that finds nothing reads them all). The list now asks
``substr(phone_masked, length(phone_masked) - 3) = '1380'`` (``crm.customer_queries.phone_last4``), the words of
this index in both databases. The masked phone is written once per customer (intake, a phone change), so the index
costs an insert one more entry and no update of anything else.

``ix_customer_updated`` (updated_at, id): the list sorted by last update (``sort=updated_desc``) read and sorted the
whole department (1.4 s for a company manager on 1,000,000 customers); with the index 48 ms. Its price, every
customer update no longer HOT, is measured and weighed in ``crm.models.customer`` and BENCHMARKS.md.

Revision ID: 0031_consoleload_list_indexes
Revises: 0031_matching_requirements
Create Date: 2026-12-06 18:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0031_consoleload_list_indexes'
down_revision = '0031_matching_requirements'
branch_labels = None
depends_on = None

PHONE_LAST4 = "substr(phone_masked, length(phone_masked) - 3)"  # crm.models.customer.PHONE_LAST4


def upgrade() -> None:
    op.create_index('ix_customer_phone_last4', 'customer', [sa.text(PHONE_LAST4)], unique=False)
    op.create_index('ix_customer_updated', 'customer', ['updated_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_customer_updated', table_name='customer')
    op.drop_index('ix_customer_phone_last4', table_name='customer')
