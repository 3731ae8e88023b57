"""WeCom mass messages (recipients, sends, monthly quota), segment group routes and joins, tag origins

Revision ID: 0003_mass
Revises: 0003_chat
Depends on: 0003_tags (crm_segment)
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0003_mass'
down_revision = "0003_chat"  # one linear chain
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wecom_tag_origin',
    sa.Column('wecom_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('wecom_id', name=op.f('pk_wecom_tag_origin'))
    )
    op.create_table('wecom_mass_message_quota',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('sent_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_wecom_mass_message_quota_customer_id_customer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'month', name=op.f('pk_wecom_mass_message_quota'))
    )
    op.create_table('wecom_segment_group_route',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('segment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('chat_id_list', sa.JSON(), nullable=False),
    sa.Column('config_id', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=30), nullable=False),
    sa.Column('qr_code', sa.String(length=500), nullable=True),
    sa.Column('auto_create_room', sa.Boolean(), nullable=False),
    sa.Column('room_base_name', sa.String(length=40), nullable=True),
    sa.Column('room_base_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff.id'], name=op.f('fk_wecom_segment_group_route_created_by_staff')),
    sa.ForeignKeyConstraint(['segment_id'], ['crm_segment.id'], name=op.f('fk_wecom_segment_group_route_segment_id_crm_segment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wecom_segment_group_route')),
    sa.UniqueConstraint('config_id', name=op.f('uq_wecom_segment_group_route_config_id')),
    sa.UniqueConstraint('state', name=op.f('uq_wecom_segment_group_route_state'))
    )
    with op.batch_alter_table('wecom_segment_group_route', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wecom_segment_group_route_segment_id'), ['segment_id'], unique=False)

    op.create_table('wecom_mass_message',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('title', sa.String(length=60), nullable=False),
    sa.Column('segment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('route_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('attachments', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=True),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff.id'], name=op.f('fk_wecom_mass_message_created_by_staff')),
    sa.ForeignKeyConstraint(['route_id'], ['wecom_segment_group_route.id'], name=op.f('fk_wecom_mass_message_route_id_wecom_segment_group_route')),
    sa.ForeignKeyConstraint(['segment_id'], ['crm_segment.id'], name=op.f('fk_wecom_mass_message_segment_id_crm_segment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wecom_mass_message'))
    )
    with op.batch_alter_table('wecom_mass_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wecom_mass_message_segment_id'), ['segment_id'], unique=False)

    op.create_table('wecom_segment_group_join',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('route_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('chat_id', sa.String(length=64), nullable=False),
    sa.Column('in_segment', sa.Boolean(), nullable=False),
    sa.Column('join_scene', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('joined_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_wecom_segment_group_join_customer_id_customer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['route_id'], ['wecom_segment_group_route.id'], name=op.f('fk_wecom_segment_group_join_route_id_wecom_segment_group_route'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wecom_segment_group_join')),
    sa.UniqueConstraint('route_id', 'customer_id', name=op.f('uq_wecom_segment_group_join_route_id_customer_id'))
    )
    with op.batch_alter_table('wecom_segment_group_join', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wecom_segment_group_join_customer_id'), ['customer_id'], unique=False)

    op.create_table('wecom_mass_message_send',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('mass_message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sender_userid', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('chunk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('recipients', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('msgid', sa.String(length=64), nullable=True),
    sa.Column('task_status', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.Column('reminded_at', sa.JSON(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('polled_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['mass_message_id'], ['wecom_mass_message.id'], name=op.f('fk_wecom_mass_message_send_mass_message_id_wecom_mass_message'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_wecom_mass_message_send_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wecom_mass_message_send')),
    sa.UniqueConstraint('msgid', name=op.f('uq_wecom_mass_message_send_msgid'))
    )
    with op.batch_alter_table('wecom_mass_message_send', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wecom_mass_message_send_mass_message_id'), ['mass_message_id'], unique=False)
        batch_op.create_index('ix_wecom_mass_message_send_status', ['status', 'created_at'], unique=False)

    op.create_table('wecom_mass_message_recipient',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('mass_message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('external_userid', sa.String(length=64), nullable=True),
    sa.Column('sender_userid', sa.String(length=64), nullable=True),
    sa.Column('send_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=120), nullable=True),
    sa.Column('quota_taken', sa.Boolean(), nullable=False),
    sa.Column('wecom_status', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('sent_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_wecom_mass_message_recipient_customer_id_customer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mass_message_id'], ['wecom_mass_message.id'], name=op.f('fk_wecom_mass_message_recipient_mass_message_id_wecom_mass_message'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['send_id'], ['wecom_mass_message_send.id'], name=op.f('fk_wecom_mass_message_recipient_send_id_wecom_mass_message_send'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wecom_mass_message_recipient')),
    sa.UniqueConstraint('mass_message_id', 'customer_id', name=op.f('uq_wecom_mass_message_recipient_mass_message_id_customer_id'))
    )
    with op.batch_alter_table('wecom_mass_message_recipient', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wecom_mass_message_recipient_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_wecom_mass_recipient_send', ['send_id', 'external_userid'], unique=False)
        batch_op.create_index('ix_wecom_mass_recipient_status', ['mass_message_id', 'status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('wecom_mass_message_recipient', schema=None) as batch_op:
        batch_op.drop_index('ix_wecom_mass_recipient_status')
        batch_op.drop_index('ix_wecom_mass_recipient_send')
        batch_op.drop_index(batch_op.f('ix_wecom_mass_message_recipient_customer_id'))

    op.drop_table('wecom_mass_message_recipient')
    with op.batch_alter_table('wecom_mass_message_send', schema=None) as batch_op:
        batch_op.drop_index('ix_wecom_mass_message_send_status')
        batch_op.drop_index(batch_op.f('ix_wecom_mass_message_send_mass_message_id'))

    op.drop_table('wecom_mass_message_send')
    with op.batch_alter_table('wecom_segment_group_join', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wecom_segment_group_join_customer_id'))

    op.drop_table('wecom_segment_group_join')
    with op.batch_alter_table('wecom_mass_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wecom_mass_message_segment_id'))

    op.drop_table('wecom_mass_message')
    with op.batch_alter_table('wecom_segment_group_route', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wecom_segment_group_route_segment_id'))

    op.drop_table('wecom_segment_group_route')
    op.drop_table('wecom_mass_message_quota')
    op.drop_table('wecom_tag_origin')
