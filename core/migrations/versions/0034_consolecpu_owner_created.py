"""customer list under load: a salesperson's customers newest first read from an index of their own

With the scope alone in the list's WHERE (``crm.customers.visible_clause(co_handles=False)``, when the viewer
co-handles no customer), a salesperson's filtered page (``owner_id = 60 AND stage = 'contacted'`` ordered by
created_at DESC, page 3) was a backward walk of ix_customer_created fetching table rows until enough of theirs
turned up: 163 ms on 1,000,000 customers. ``(owner_id, created_at, id)``, partial as ix_customer_owner_status,
gives their rows in the list's order: ~1 ms. Every insert and update writes one more index entry (no customer
update is HOT since ix_customer_updated).

Revision ID: 0034_consolecpu_owner_created
Revises: 0033_channel_costs
Create Date: 2026-12-06 21:15:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0034_consolecpu_owner_created'
down_revision = '0033_channel_costs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # if_not_exists: the 1M-customer bench database got it by hand (CREATE INDEX CONCURRENTLY), before this ran
    op.create_index('ix_customer_owner_created', 'customer', ['owner_id', 'created_at', 'id'], unique=False,
                    if_not_exists=True,
                    postgresql_where=sa.text('owner_id IS NOT NULL'), sqlite_where=sa.text('owner_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_customer_owner_created', table_name='customer')
