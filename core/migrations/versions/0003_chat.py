"""WeCom chat commands and notifications: team group robots (群机器人)

Revision ID: 0003_chat
Revises: 0003_channel
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = "0003_chat"
down_revision = "0003_channel"  # one linear chain
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "wecom_robot",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("department_id", ID, nullable=False),
        sa.Column("webhook_key_enc", sa.Text(), nullable=False),
        sa.Column("key_hint", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by_staff_id", ID, nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_posted_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by_staff_id"], ["staff.id"],
                                name=op.f("fk_wecom_robot_created_by_staff_id_staff")),
        sa.ForeignKeyConstraint(["department_id"], ["department.id"],
                                name=op.f("fk_wecom_robot_department_id_department")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_robot")),
        sa.UniqueConstraint("department_id", "name", name=op.f("uq_wecom_robot_department_id_name")),
    )
    op.create_index(op.f("ix_wecom_robot_department_id"), "wecom_robot", ["department_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_wecom_robot_department_id"), table_name="wecom_robot")
    op.drop_table("wecom_robot")
