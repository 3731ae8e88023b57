"""custom roles (自定义角色: named permissions and a data scope) and the admin's dismissal of the onboarding checklist

Revision ID: 0030_roles_custom_roles
Revises: 0030_reports_builder
Create Date: 2026-12-06 14:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0030_roles_custom_roles'
down_revision = '0030_reports_builder'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'custom_role',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('key', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('description', sa.String(length=200), nullable=True),
        sa.Column('permissions', sa.JSON(), nullable=False),
        sa.Column('data_scope', sa.String(length=16), nullable=False),
        sa.Column('based_on', sa.String(length=16), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("data_scope IN ('own', 'department', 'all')", name=op.f('ck_custom_role_data_scope_known')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_custom_role')),
        sa.UniqueConstraint('key', name=op.f('uq_custom_role_key')),
        sa.UniqueConstraint('name', name=op.f('uq_custom_role_name')),
    )
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('onboarding_dismissed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_column('onboarding_dismissed_at')
    op.drop_table('custom_role')
