"""tags, customer tags, segments

Revision ID: 0003_tags
Revises: 0002
Create Date: 2026-11-23 18:05:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0003_tags'
down_revision = "0002"  # one linear chain
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('crm_tag_group',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=30), nullable=False),
    sa.Column('sort', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('wecom_group_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_tag_group')),
    sa.UniqueConstraint('wecom_group_id', name=op.f('uq_crm_tag_group_wecom_group_id'))
    )
    with op.batch_alter_table('crm_tag_group', schema=None) as batch_op:
        batch_op.create_index('uq_crm_tag_group_live_name', ['name'], unique=True,
                              postgresql_where=sa.text('deleted_at IS NULL'), sqlite_where=sa.text('deleted_at IS NULL'))

    op.create_table('crm_tag',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('group_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=30), nullable=False),
    sa.Column('sort', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('wecom_tag_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['group_id'], ['crm_tag_group.id'], name=op.f('fk_crm_tag_group_id_crm_tag_group')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_tag')),
    sa.UniqueConstraint('wecom_tag_id', name=op.f('uq_crm_tag_wecom_tag_id'))
    )
    with op.batch_alter_table('crm_tag', schema=None) as batch_op:
        batch_op.create_index('uq_crm_tag_live_name', ['group_id', 'name'], unique=True,
                              postgresql_where=sa.text('deleted_at IS NULL'), sqlite_where=sa.text('deleted_at IS NULL'))

    op.create_table('crm_segment',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=True),
    sa.Column('rule', sa.JSON(), nullable=False),
    sa.Column('for_mass_message', sa.Boolean(), nullable=False),
    sa.Column('for_group_routing', sa.Boolean(), nullable=False),
    sa.Column('created_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_staff_id'], ['staff.id'], name=op.f('fk_crm_segment_created_by_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_segment')),
    sa.UniqueConstraint('name', name=op.f('uq_crm_segment_name'))
    )
    op.create_table('customer_tag',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tag_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('added_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('added_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['added_by_staff_id'], ['staff.id'], name=op.f('fk_customer_tag_added_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_customer_tag_customer_id_customer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tag_id'], ['crm_tag.id'], name=op.f('fk_customer_tag_tag_id_crm_tag'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'tag_id', name=op.f('pk_customer_tag'))
    )
    with op.batch_alter_table('customer_tag', schema=None) as batch_op:
        batch_op.create_index('ix_customer_tag_tag_customer', ['tag_id', 'customer_id'], unique=False)

    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.create_index('ix_customer_segment_region_grade', ['region', 'grade'], unique=False,
                              postgresql_include=['owner_id', 'id'],
                              postgresql_where=sa.text("status <> 'blacklist'"),
                              sqlite_where=sa.text("status <> 'blacklist'"))


def downgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_segment_region_grade')
    with op.batch_alter_table('customer_tag', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_tag_tag_customer')
    op.drop_table('customer_tag')
    op.drop_table('crm_segment')
    with op.batch_alter_table('crm_tag', schema=None) as batch_op:
        batch_op.drop_index('uq_crm_tag_live_name', postgresql_where=sa.text('deleted_at IS NULL'),
                            sqlite_where=sa.text('deleted_at IS NULL'))
    op.drop_table('crm_tag')
    with op.batch_alter_table('crm_tag_group', schema=None) as batch_op:
        batch_op.drop_index('uq_crm_tag_group_live_name', postgresql_where=sa.text('deleted_at IS NULL'),
                            sqlite_where=sa.text('deleted_at IS NULL'))
    op.drop_table('crm_tag_group')
