"""mini-program channel: login sessions and used codes, consent documents and records, application drafts
and uploaded documents, the share scenes new users arrived through; the kernel's rate-limit windows

Revision ID: 0003_mp
Revises: 0003_referral
Create Date: 2026-11-23 18:45:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0003_mp'
down_revision = "0003_referral"  # one linear chain
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mp_used_code',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code_digest', sa.String(length=64), nullable=False),
    sa.Column('used_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mp_used_code')),
    sa.UniqueConstraint('code_digest', name=op.f('uq_mp_used_code_code_digest'))
    )
    op.create_index(op.f('ix_mp_used_code_used_at'), 'mp_used_code', ['used_at'], unique=False)
    op.create_table('rate_limit_window',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('window_start', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hits', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_limit_window')),
    sa.UniqueConstraint('key', 'window_start', name=op.f('uq_rate_limit_window_key_window_start'))
    )
    op.create_index('ix_rate_limit_window_expires', 'rate_limit_window', ['expires_at'], unique=False)
    op.create_table('mp_consent_document',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('version', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('funder_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('body', sa.String(length=20000), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('published_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['funder_id'], ['lending_funder.id'], name=op.f('fk_mp_consent_document_funder_id_lending_funder')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mp_consent_document')),
    sa.UniqueConstraint('code', 'version', name=op.f('uq_mp_consent_document_code_version'))
    )
    op.create_index(op.f('ix_mp_consent_document_code'), 'mp_consent_document', ['code'], unique=False)
    op.create_table('mp_application_draft',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('requested_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('term_months', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('profile', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('submit_key', sa.String(length=64), nullable=True),
    sa.Column('product_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('application_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('requested_amount IS NULL OR requested_amount > 0', name=op.f('ck_mp_application_draft_amount_positive')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_mp_application_draft_customer_id_customer')),
    sa.ForeignKeyConstraint(['product_id'], ['lending_product.id'], name=op.f('fk_mp_application_draft_product_id_lending_product')),
    sa.ForeignKeyConstraint(['product_version_id'], ['lending_product_version.id'], name=op.f('fk_mp_application_draft_product_version_id_lending_product_version')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mp_application_draft')),
    sa.UniqueConstraint('customer_id', 'submit_key', name=op.f('uq_mp_application_draft_customer_id_submit_key'))
    )
    op.create_index('ix_mp_application_draft_customer', 'mp_application_draft', ['customer_id', 'status'], unique=False)
    op.create_table('mp_consent',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('document_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('version', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=200), nullable=True),
    sa.CheckConstraint("action IN ('grant', 'withdraw')", name=op.f('ck_mp_consent_action_known')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_mp_consent_customer_id_customer')),
    sa.ForeignKeyConstraint(['document_id'], ['mp_consent_document.id'], name=op.f('fk_mp_consent_document_id_mp_consent_document')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mp_consent'))
    )
    op.create_index('ix_mp_consent_customer_code', 'mp_consent', ['customer_id', 'code', 'id'], unique=False)
    op.create_table('mp_referral_attribution',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('referrer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('referrer_customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('scene', sa.String(length=32), nullable=False),
    sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('customer_id <> referrer_customer_id', name=op.f('ck_mp_referral_attribution_not_self')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_mp_referral_attribution_customer_id_customer')),
    sa.ForeignKeyConstraint(['referrer_customer_id'], ['customer.id'], name=op.f('fk_mp_referral_attribution_referrer_customer_id_customer')),
    sa.ForeignKeyConstraint(['referrer_id'], ['referrer.id'], name=op.f('fk_mp_referral_attribution_referrer_id_referrer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mp_referral_attribution')),
    sa.UniqueConstraint('customer_id', name=op.f('uq_mp_referral_attribution_customer_id'))
    )
    op.create_index('ix_mp_referral_attribution_referrer', 'mp_referral_attribution', ['referrer_customer_id', 'at'], unique=False)
    op.create_table('mp_session',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_digest', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('unionid', sa.String(length=64), nullable=True),
    sa.Column('session_key_enc', sa.String(length=200), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_mp_session_customer_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mp_session')),
    sa.UniqueConstraint('token_digest', name=op.f('uq_mp_session_token_digest'))
    )
    op.create_index('ix_mp_session_customer', 'mp_session', ['customer_id'], unique=False)
    op.create_table('mp_document',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('draft_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('content_type', sa.String(length=20), nullable=False),
    sa.Column('size_bytes', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage_name', sa.String(length=120), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_mp_document_customer_id_customer')),
    sa.ForeignKeyConstraint(['draft_id'], ['mp_application_draft.id'], name=op.f('fk_mp_document_draft_id_mp_application_draft')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mp_document')),
    sa.UniqueConstraint('storage_name', name=op.f('uq_mp_document_storage_name'))
    )
    op.create_index('ix_mp_document_customer', 'mp_document', ['customer_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_mp_document_customer', table_name='mp_document')
    op.drop_table('mp_document')
    op.drop_index('ix_mp_session_customer', table_name='mp_session')
    op.drop_table('mp_session')
    op.drop_index('ix_mp_referral_attribution_referrer', table_name='mp_referral_attribution')
    op.drop_table('mp_referral_attribution')
    op.drop_index('ix_mp_consent_customer_code', table_name='mp_consent')
    op.drop_table('mp_consent')
    op.drop_index('ix_mp_application_draft_customer', table_name='mp_application_draft')
    op.drop_table('mp_application_draft')
    op.drop_index(op.f('ix_mp_consent_document_code'), table_name='mp_consent_document')
    op.drop_table('mp_consent_document')
    op.drop_index('ix_rate_limit_window_expires', table_name='rate_limit_window')
    op.drop_table('rate_limit_window')
    op.drop_index(op.f('ix_mp_used_code_used_at'), table_name='mp_used_code')
    op.drop_table('mp_used_code')
