"""repayment reminders to the borrower's WeCom (the external contact): a third reminder audience ``wecom``

Revision ID: 0024_borrower_wecom_reminders
Revises: 0021_analytics_more
Create Date: 2026-12-06 12:50:00.000000
"""
from alembic import op

revision = '0024_borrower_wecom_reminders'
down_revision = '0021_analytics_more'  # one linear chain
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lending_reminder', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lending_reminder_audience_known'), type_='check')
        batch_op.create_check_constraint('audience_known', "audience IN ('borrower', 'staff', 'wecom')")


def downgrade() -> None:
    op.execute("DELETE FROM lending_reminder WHERE audience = 'wecom'")
    with op.batch_alter_table('lending_reminder', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lending_reminder_audience_known'), type_='check')
        batch_op.create_check_constraint('audience_known', "audience IN ('borrower', 'staff')")
