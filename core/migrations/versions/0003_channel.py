"""WeCom channel codes, adds and attributions, staff-contact relations, group chats

Revision ID: 0003_channel
Revises: 0003_gateway
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = "0003_channel"
down_revision = "0003_gateway"  # one linear chain
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "wecom_channel_code",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("campaign", sa.String(length=60), nullable=True),
        sa.Column("code_type", ID, nullable=False),
        sa.Column("staff_ids", sa.JSON(), nullable=False),
        sa.Column("backup_staff_ids", sa.JSON(), nullable=False),
        sa.Column("active_userids", sa.JSON(), nullable=False),
        sa.Column("swapped_on", sa.Date(), nullable=True),
        sa.Column("referrer_ref", sa.String(length=64), nullable=True),
        sa.Column("welcome_text", sa.Text(), nullable=True),
        sa.Column("tag_ids", sa.JSON(), nullable=False),
        sa.Column("daily_cap", ID, nullable=True),
        sa.Column("skip_verify", sa.Boolean(), nullable=False),
        sa.Column("config_id", sa.String(length=64), nullable=False),
        sa.Column("qr_code", sa.String(length=500), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", ID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("deleted_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["staff.id"], name=op.f("fk_wecom_channel_code_created_by_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_channel_code")),
        sa.UniqueConstraint("config_id", name=op.f("uq_wecom_channel_code_config_id")),
        sa.UniqueConstraint("state", name=op.f("uq_wecom_channel_code_state")),
    )
    op.create_table(
        "wecom_channel_add",
        sa.Column("id", ID, nullable=False),
        sa.Column("channel_code_id", ID, nullable=False),
        sa.Column("staff_userid", sa.String(length=64), nullable=False),
        sa.Column("staff_id", ID, nullable=True),
        sa.Column("external_userid", sa.String(length=64), nullable=False),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("add_date", sa.Date(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("deleted_by", sa.String(length=16), nullable=True),
        sa.Column("deleted_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["channel_code_id"], ["wecom_channel_code.id"],
                                name=op.f("fk_wecom_channel_add_channel_code_id_wecom_channel_code"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"],
                                name=op.f("fk_wecom_channel_add_customer_id_customer"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_wecom_channel_add_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_channel_add")),
        sa.UniqueConstraint("channel_code_id", "staff_userid", "external_userid", "add_date",
                            name=op.f("uq_wecom_channel_add_channel_code_id_staff_userid_external_userid_add_date")),
    )
    op.create_index("ix_wecom_channel_add_cap", "wecom_channel_add", ["channel_code_id", "staff_userid", "add_date"])
    op.create_index("ix_wecom_channel_add_relation", "wecom_channel_add", ["external_userid", "staff_userid"])
    op.create_table(
        "wecom_channel_attribution",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("channel_code_id", ID, nullable=False),
        sa.Column("staff_id", ID, nullable=True),
        sa.Column("referrer_ref", sa.String(length=64), nullable=True),
        sa.Column("new_customer", sa.Boolean(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(["channel_code_id"], ["wecom_channel_code.id"],
                                name=op.f("fk_wecom_channel_attribution_channel_code_id_wecom_channel_code"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"],
                                name=op.f("fk_wecom_channel_attribution_customer_id_customer"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_wecom_channel_attribution_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_channel_attribution")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_wecom_channel_attribution_customer_id")),
    )
    op.create_index(op.f("ix_wecom_channel_attribution_channel_code_id"), "wecom_channel_attribution",
                    ["channel_code_id"])
    op.create_table(
        "wecom_relation",
        sa.Column("id", ID, nullable=False),
        sa.Column("external_userid", sa.String(length=64), nullable=False),
        sa.Column("staff_userid", sa.String(length=64), nullable=False),
        sa.Column("staff_id", ID, nullable=True),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=True),
        sa.Column("remark", sa.String(length=100), nullable=True),
        sa.Column("added_at", TS, nullable=False),
        sa.Column("removed_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], name=op.f("fk_wecom_relation_customer_id_customer"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_wecom_relation_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_relation")),
        sa.UniqueConstraint("external_userid", "staff_userid", name=op.f("uq_wecom_relation_external_userid_staff_userid")),
    )
    op.create_index("ix_wecom_relation_customer", "wecom_relation", ["customer_id", "status"])
    op.create_table(
        "wecom_group_chat",
        sa.Column("id", ID, nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("owner_userid", sa.String(length=64), nullable=True),
        sa.Column("owner_staff_id", ID, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("member_count", ID, nullable=False),
        sa.Column("notice", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("dismissed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["owner_staff_id"], ["staff.id"],
                                name=op.f("fk_wecom_group_chat_owner_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_group_chat")),
        sa.UniqueConstraint("chat_id", name=op.f("uq_wecom_group_chat_chat_id")),
    )
    op.create_index(op.f("ix_wecom_group_chat_owner_staff_id"), "wecom_group_chat", ["owner_staff_id"])
    op.create_table(
        "wecom_group_chat_member",
        sa.Column("id", ID, nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("member_type", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("join_scene", ID, nullable=True),
        sa.Column("joined_at", TS, nullable=False),
        sa.Column("left_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["chat_id"], ["wecom_group_chat.chat_id"],
                                name=op.f("fk_wecom_group_chat_member_chat_id_wecom_group_chat"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"],
                                name=op.f("fk_wecom_group_chat_member_customer_id_customer"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_group_chat_member")),
        sa.UniqueConstraint("chat_id", "member_id", name=op.f("uq_wecom_group_chat_member_chat_id_member_id")),
    )
    op.create_index("ix_wecom_group_chat_member_member", "wecom_group_chat_member", ["member_id", "left_at"])


def downgrade() -> None:
    op.drop_table("wecom_group_chat_member")
    op.drop_table("wecom_group_chat")
    op.drop_table("wecom_relation")
    op.drop_table("wecom_channel_attribution")
    op.drop_table("wecom_channel_add")
    op.drop_table("wecom_channel_code")
