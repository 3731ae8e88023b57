"""finance center (财务中心): the double-entry ledger (accounts, append-only journal entries and lines,
period close), service agreements and amendments, deposits and refunds, customer loans, settlements
with added fees, split payments and rebates, reimbursements; the chart of accounts and the added fee
types seeded

The ledger is guarded in the database itself: entries, lines and period closes are append-only
(triggers, as core's audit log); an entry dated in a closed month is refused by a trigger; each
entry balances (PostgreSQL: a deferred constraint trigger sums the entry's lines at commit; SQLite,
which has no deferred triggers: a line that would take the entry past its declared total is refused,
and so is a new entry while the previous one's lines do not add up to its total).

Self-contained (adds tables only): when another migration lands first, re-point ``down_revision``.

Revision ID: 0011_finance
Revises: 0008_customer_search_indexes
Create Date: 2026-12-06 08:02:36.105654
"""
import sqlalchemy as sa
from alembic import op

import core.db
from core.migrations.helpers import drop_append_only, make_append_only

revision = '0011_finance'
down_revision = '0012_payments'  # chain: 0008 → 0010 → 0012 → 0011 (branches merged in that order)
branch_labels = None
depends_on = None

APPEND_ONLY = ('finance_journal_entry', 'finance_journal_line', 'finance_period_close')

ACCOUNTS = (
    ("cash", "1001", "库存现金", "asset"),
    ("bank", "1002.01", "银行存款", "asset"),
    ("alipay", "1002.02", "支付宝账户", "asset"),
    ("wechat", "1002.03", "微信账户", "asset"),
    ("withholding", "1002.04", "代扣账户", "asset"),
    ("customer_loans", "1221", "客户借款", "asset"),
    ("deposits_held", "2241.01", "客户定金（代收）", "liability"),
    ("rebates_payable", "2241.02", "应付返点", "liability"),
    ("reimbursements_payable", "2241.03", "应付报销款", "liability"),
    ("fee_revenue", "6001", "服务费收入", "revenue"),
    ("loan_income", "6051", "借款利息及费用收入", "revenue"),
    ("rebate_expense", "6601.01", "返点支出", "expense"),
    ("reimbursement_expense", "6601.02", "做单报销费用", "expense"),
    ("marketing_expense", "6601.03", "营销费用", "expense"),
)
FEE_TYPES = (("visit", "下户费"), ("channel_management", "渠道管理费"), ("appraisal", "评估费"))

PG_GUARDS = (
    """CREATE OR REPLACE FUNCTION finance_entry_balances() RETURNS trigger AS $$
    DECLARE n bigint; dr bigint; cr bigint; total bigint;
    BEGIN
        SELECT count(*), coalesce(sum(debit_amount), 0), coalesce(sum(credit_amount), 0)
          INTO n, dr, cr FROM finance_journal_line WHERE entry_id = NEW.entry_id;
        SELECT total_amount INTO total FROM finance_journal_entry WHERE id = NEW.entry_id;
        IF n < 2 OR dr <> cr OR dr <> total THEN
            RAISE EXCEPTION 'finance_journal_entry % does not balance: % lines, debit %, credit %, total %',
                NEW.entry_id, n, dr, cr, total;
        END IF;
        RETURN NULL;
    END; $$ LANGUAGE plpgsql""",
    """CREATE CONSTRAINT TRIGGER finance_journal_line_balanced AFTER INSERT ON finance_journal_line
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION finance_entry_balances()""",
    """CREATE OR REPLACE FUNCTION finance_entry_has_lines() RETURNS trigger AS $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM finance_journal_line WHERE entry_id = NEW.id) THEN
            RAISE EXCEPTION 'finance_journal_entry % has no lines', NEW.id;
        END IF;
        RETURN NULL;
    END; $$ LANGUAGE plpgsql""",
    """CREATE CONSTRAINT TRIGGER finance_journal_entry_has_lines AFTER INSERT ON finance_journal_entry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION finance_entry_has_lines()""",
    """CREATE OR REPLACE FUNCTION finance_entry_period_open() RETURNS trigger AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM finance_period_close WHERE period_month = NEW.period_month) THEN
            RAISE EXCEPTION 'finance period % is closed', NEW.period_month;
        END IF;
        IF NEW.period_month <> date_trunc('month', NEW.entry_date)::date THEN
            RAISE EXCEPTION 'finance_journal_entry period % does not match its date %', NEW.period_month, NEW.entry_date;
        END IF;
        RETURN NEW;
    END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER finance_journal_entry_period_open BEFORE INSERT ON finance_journal_entry
    FOR EACH ROW EXECUTE FUNCTION finance_entry_period_open()""",
)
PG_DROP = (
    "DROP TRIGGER IF EXISTS finance_journal_entry_period_open ON finance_journal_entry",
    "DROP TRIGGER IF EXISTS finance_journal_entry_has_lines ON finance_journal_entry",
    "DROP TRIGGER IF EXISTS finance_journal_line_balanced ON finance_journal_line",
    "DROP FUNCTION IF EXISTS finance_entry_period_open()",
    "DROP FUNCTION IF EXISTS finance_entry_has_lines()",
    "DROP FUNCTION IF EXISTS finance_entry_balances()",
)
SQLITE_GUARDS = (
    """CREATE TRIGGER finance_journal_line_within_total BEFORE INSERT ON finance_journal_line
    WHEN (SELECT coalesce(sum(debit_amount), 0) FROM finance_journal_line WHERE entry_id = NEW.entry_id)
            + NEW.debit_amount > (SELECT total_amount FROM finance_journal_entry WHERE id = NEW.entry_id)
      OR (SELECT coalesce(sum(credit_amount), 0) FROM finance_journal_line WHERE entry_id = NEW.entry_id)
            + NEW.credit_amount > (SELECT total_amount FROM finance_journal_entry WHERE id = NEW.entry_id)
    BEGIN SELECT RAISE(ABORT, 'finance_journal_entry does not balance: line past its total'); END""",
    """CREATE TRIGGER finance_journal_entry_previous_balanced BEFORE INSERT ON finance_journal_entry
    WHEN EXISTS (SELECT 1 FROM finance_journal_entry e WHERE e.id = (SELECT max(id) FROM finance_journal_entry)
                   AND (SELECT coalesce(sum(debit_amount), 0) FROM finance_journal_line WHERE entry_id = e.id)
                       <> e.total_amount
                    OR (SELECT coalesce(sum(credit_amount), 0) FROM finance_journal_line WHERE entry_id = e.id)
                       <> e.total_amount)
    BEGIN SELECT RAISE(ABORT, 'the previous finance_journal_entry does not balance'); END""",
    """CREATE TRIGGER finance_journal_entry_period_open BEFORE INSERT ON finance_journal_entry
    WHEN EXISTS (SELECT 1 FROM finance_period_close WHERE period_month = NEW.period_month)
      OR NEW.period_month <> date(NEW.entry_date, 'start of month')
    BEGIN SELECT RAISE(ABORT, 'finance period is closed or does not match the entry date'); END""",
)
SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS finance_journal_line_within_total",
    "DROP TRIGGER IF EXISTS finance_journal_entry_previous_balanced",
    "DROP TRIGGER IF EXISTS finance_journal_entry_period_open",
)


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('finance_account',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('number', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('balance_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint("kind IN ('asset', 'liability', 'revenue', 'expense')", name=op.f('ck_finance_account_kind_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_account')),
    sa.UniqueConstraint('code', name=op.f('uq_finance_account_code')),
    sa.UniqueConstraint('number', name=op.f('uq_finance_account_number'))
    )
    op.create_table('finance_fee_type',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_fee_type')),
    sa.UniqueConstraint('code', name=op.f('uq_finance_fee_type_code')),
    sa.UniqueConstraint('name', name=op.f('uq_finance_fee_type_name'))
    )
    op.create_table('finance_journal_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entry_date', sa.Date(), nullable=False),
    sa.Column('period_month', sa.Date(), nullable=False),
    sa.Column('total_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('memo', sa.String(length=200), nullable=False),
    sa.Column('source_type', sa.String(length=40), nullable=False),
    sa.Column('source_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('source_key', sa.String(length=80), nullable=False),
    sa.Column('reversal_of_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('total_amount > 0', name=op.f('ck_finance_journal_entry_total_positive')),
    sa.ForeignKeyConstraint(['by_staff_id'], ['staff.id'], name=op.f('fk_finance_journal_entry_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['reversal_of_id'], ['finance_journal_entry.id'], name=op.f('fk_finance_journal_entry_reversal_of_id_finance_journal_entry')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_journal_entry')),
    sa.UniqueConstraint('reversal_of_id', name=op.f('uq_finance_journal_entry_reversal_of_id')),
    sa.UniqueConstraint('source_key', name=op.f('uq_finance_journal_entry_source_key'))
    )
    with op.batch_alter_table('finance_journal_entry', schema=None) as batch_op:
        batch_op.create_index('ix_finance_journal_entry_period', ['period_month'], unique=False)
        batch_op.create_index('ix_finance_journal_entry_source', ['source_type', 'source_id'], unique=False)

    op.create_table('finance_period_close',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period_month', sa.Date(), nullable=False),
    sa.Column('line_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('debit_total_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('closed_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['by_staff_id'], ['staff.id'], name=op.f('fk_finance_period_close_by_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_period_close')),
    sa.UniqueConstraint('period_month', name=op.f('uq_finance_period_close_period_month'))
    )
    op.create_table('finance_journal_line',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('debit_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('credit_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint('(debit_amount > 0) <> (credit_amount > 0)', name=op.f('ck_finance_journal_line_one_side')),
    sa.CheckConstraint('debit_amount >= 0 AND credit_amount >= 0', name=op.f('ck_finance_journal_line_sides_non_negative')),
    sa.ForeignKeyConstraint(['account_id'], ['finance_account.id'], name=op.f('fk_finance_journal_line_account_id_finance_account')),
    sa.ForeignKeyConstraint(['entry_id'], ['finance_journal_entry.id'], name=op.f('fk_finance_journal_line_entry_id_finance_journal_entry')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_journal_line'))
    )
    with op.batch_alter_table('finance_journal_line', schema=None) as batch_op:
        batch_op.create_index('ix_finance_journal_line_account', ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_finance_journal_line_entry_id'), ['entry_id'], unique=False)

    op.create_table('finance_agreement',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('application_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('sales_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('case_officer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('signed_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('version', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('loan_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('term_months', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('funder_annual_rate', sa.Numeric(precision=12, scale=8), nullable=False),
    sa.Column('repayment_method', sa.String(length=20), nullable=False),
    sa.Column('funder_fee_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('service_fee_rate', sa.Numeric(precision=12, scale=8), nullable=False),
    sa.Column('service_fee_fixed_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('deposit_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('other_fees', sa.JSON(), nullable=True),
    sa.Column('other_fees_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('apr_rate', sa.Numeric(precision=12, scale=8), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=True),
    sa.Column('created_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('approved_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('approved_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('cancelled_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('draft', 'confirmed', 'approved', 'working', 'disbursed', 'settled', 'cancelled')", name=op.f('ck_finance_agreement_status_known')),
    sa.CheckConstraint('loan_amount > 0 AND deposit_amount >= 0 AND service_fee_fixed_amount >= 0 AND other_fees_amount >= 0 AND funder_fee_amount >= 0', name=op.f('ck_finance_agreement_amounts_valid')),
    sa.CheckConstraint('service_fee_rate >= 0 AND service_fee_rate < 1', name=op.f('ck_finance_agreement_fee_rate_valid')),
    sa.ForeignKeyConstraint(['application_id'], ['lending_application.id'], name=op.f('fk_finance_agreement_application_id_lending_application')),
    sa.ForeignKeyConstraint(['approved_by_staff_id'], ['staff.id'], name=op.f('fk_finance_agreement_approved_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['case_officer_id'], ['staff.id'], name=op.f('fk_finance_agreement_case_officer_id_staff')),
    sa.ForeignKeyConstraint(['confirmed_by_staff_id'], ['staff.id'], name=op.f('fk_finance_agreement_confirmed_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['created_by_staff_id'], ['staff.id'], name=op.f('fk_finance_agreement_created_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_finance_agreement_customer_id_customer')),
    sa.ForeignKeyConstraint(['sales_staff_id'], ['staff.id'], name=op.f('fk_finance_agreement_sales_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_agreement')),
    sa.UniqueConstraint('application_id', name=op.f('uq_finance_agreement_application_id')),
    sa.UniqueConstraint('number', name=op.f('uq_finance_agreement_number'))
    )
    with op.batch_alter_table('finance_agreement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finance_agreement_case_officer_id'), ['case_officer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_finance_agreement_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_finance_agreement_sales_staff_id'), ['sales_staff_id'], unique=False)
        batch_op.create_index('ix_finance_agreement_status', ['status', 'id'], unique=False)

    op.create_table('finance_amendment',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('agreement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('before', sa.JSON(), nullable=False),
    sa.Column('after', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('proposed_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('proposed_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('decided_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'confirmed', 'rejected')", name=op.f('ck_finance_amendment_status_known')),
    sa.ForeignKeyConstraint(['agreement_id'], ['finance_agreement.id'], name=op.f('fk_finance_amendment_agreement_id_finance_agreement')),
    sa.ForeignKeyConstraint(['decided_by_staff_id'], ['staff.id'], name=op.f('fk_finance_amendment_decided_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['proposed_by_staff_id'], ['staff.id'], name=op.f('fk_finance_amendment_proposed_by_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_amendment'))
    )
    with op.batch_alter_table('finance_amendment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finance_amendment_agreement_id'), ['agreement_id'], unique=False)

    op.create_table('finance_deposit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('agreement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('refunded_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('method', sa.String(length=12), nullable=False),
    sa.Column('received_date', sa.Date(), nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('entered_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('confirmed_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('confirmed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('journal_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('voided_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('voided_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('void_reason', sa.String(length=200), nullable=True),
    sa.CheckConstraint("method IN ('cash', 'alipay', 'wechat', 'bank', 'withholding')", name=op.f('ck_finance_deposit_method_known')),
    sa.CheckConstraint("status IN ('received', 'confirmed', 'voided')", name=op.f('ck_finance_deposit_status_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_finance_deposit_amount_positive')),
    sa.CheckConstraint('refunded_amount >= 0 AND refunded_amount <= amount', name=op.f('ck_finance_deposit_refund_within_amount')),
    sa.ForeignKeyConstraint(['agreement_id'], ['finance_agreement.id'], name=op.f('fk_finance_deposit_agreement_id_finance_agreement')),
    sa.ForeignKeyConstraint(['confirmed_by_staff_id'], ['staff.id'], name=op.f('fk_finance_deposit_confirmed_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['entered_by_staff_id'], ['staff.id'], name=op.f('fk_finance_deposit_entered_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['journal_entry_id'], ['finance_journal_entry.id'], name=op.f('fk_finance_deposit_journal_entry_id_finance_journal_entry')),
    sa.ForeignKeyConstraint(['voided_by_staff_id'], ['staff.id'], name=op.f('fk_finance_deposit_voided_by_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_deposit'))
    )
    with op.batch_alter_table('finance_deposit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finance_deposit_agreement_id'), ['agreement_id'], unique=False)

    op.create_table('finance_reimbursement',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('agreement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('spent_date', sa.Date(), nullable=False),
    sa.Column('approved_by_manager_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('entered_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('confirmed_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('confirmed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('paid_method', sa.String(length=12), nullable=True),
    sa.Column('paid_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('paid_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('journal_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('voided_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resubmitted_from_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint("kind IN ('case', 'marketing')", name=op.f('ck_finance_reimbursement_kind_known')),
    sa.CheckConstraint("status IN ('submitted', 'confirmed', 'paid', 'voided')", name=op.f('ck_finance_reimbursement_status_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_finance_reimbursement_amount_positive')),
    sa.ForeignKeyConstraint(['agreement_id'], ['finance_agreement.id'], name=op.f('fk_finance_reimbursement_agreement_id_finance_agreement')),
    sa.ForeignKeyConstraint(['approved_by_manager_id'], ['staff.id'], name=op.f('fk_finance_reimbursement_approved_by_manager_id_staff')),
    sa.ForeignKeyConstraint(['confirmed_by_staff_id'], ['staff.id'], name=op.f('fk_finance_reimbursement_confirmed_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_finance_reimbursement_customer_id_customer')),
    sa.ForeignKeyConstraint(['entered_by_staff_id'], ['staff.id'], name=op.f('fk_finance_reimbursement_entered_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['journal_entry_id'], ['finance_journal_entry.id'], name=op.f('fk_finance_reimbursement_journal_entry_id_finance_journal_entry')),
    sa.ForeignKeyConstraint(['paid_by_staff_id'], ['staff.id'], name=op.f('fk_finance_reimbursement_paid_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['resubmitted_from_id'], ['finance_reimbursement.id'], name=op.f('fk_finance_reimbursement_resubmitted_from_id_finance_reimbursement')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_reimbursement'))
    )
    with op.batch_alter_table('finance_reimbursement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finance_reimbursement_agreement_id'), ['agreement_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_finance_reimbursement_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_finance_reimbursement_entered_by_staff_id'), ['entered_by_staff_id'], unique=False)

    op.create_table('finance_deposit_refund',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('deposit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('method', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('requested_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('requested_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('decided_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('journal_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint("method IN ('cash', 'alipay', 'wechat', 'bank', 'withholding')", name=op.f('ck_finance_deposit_refund_method_known')),
    sa.CheckConstraint("status IN ('requested', 'confirmed', 'rejected')", name=op.f('ck_finance_deposit_refund_status_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_finance_deposit_refund_amount_positive')),
    sa.ForeignKeyConstraint(['decided_by_staff_id'], ['staff.id'], name=op.f('fk_finance_deposit_refund_decided_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['deposit_id'], ['finance_deposit.id'], name=op.f('fk_finance_deposit_refund_deposit_id_finance_deposit')),
    sa.ForeignKeyConstraint(['journal_entry_id'], ['finance_journal_entry.id'], name=op.f('fk_finance_deposit_refund_journal_entry_id_finance_journal_entry')),
    sa.ForeignKeyConstraint(['requested_by_staff_id'], ['staff.id'], name=op.f('fk_finance_deposit_refund_requested_by_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_deposit_refund'))
    )
    with op.batch_alter_table('finance_deposit_refund', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finance_deposit_refund_deposit_id'), ['deposit_id'], unique=False)

    op.create_table('finance_settlement',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('agreement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('funder_name', sa.String(length=80), nullable=False),
    sa.Column('funder_type', sa.String(length=20), nullable=False),
    sa.Column('disbursed_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('disbursed_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('revision', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('service_fee_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('discount_kind', sa.String(length=8), nullable=False),
    sa.Column('discount_rate', sa.Numeric(precision=12, scale=8), nullable=True),
    sa.Column('discount_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('installment_fee_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('extra_fees_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('loan_repaid_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('deposit_applied_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('total_due_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rebate_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('fee_refunded_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('charged_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('charged_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('officer_confirmed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('officer_confirmed_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('supervisor_confirmed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('supervisor_confirmed_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('sales_confirmed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sales_confirmed_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('settled_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('settled_by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('journal_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("discount_kind IN ('none', 'percent', 'fixed')", name=op.f('ck_finance_settlement_discount_kind_known')),
    sa.CheckConstraint("source IN ('lending', 'manual')", name=op.f('ck_finance_settlement_source_known')),
    sa.CheckConstraint("status IN ('pending', 'charged', 'settled')", name=op.f('ck_finance_settlement_status_known')),
    sa.CheckConstraint('disbursed_amount > 0', name=op.f('ck_finance_settlement_disbursed_positive')),
    sa.CheckConstraint('discount_amount >= 0 AND discount_amount <= service_fee_amount', name=op.f('ck_finance_settlement_discount_within_fee')),
    sa.CheckConstraint('total_due_amount >= 0', name=op.f('ck_finance_settlement_total_non_negative')),
    sa.CheckConstraint('fee_refunded_amount >= 0', name=op.f('ck_finance_settlement_fee_refunded_non_negative')),
    sa.ForeignKeyConstraint(['agreement_id'], ['finance_agreement.id'], name=op.f('fk_finance_settlement_agreement_id_finance_agreement')),
    sa.ForeignKeyConstraint(['charged_by_staff_id'], ['staff.id'], name=op.f('fk_finance_settlement_charged_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['journal_entry_id'], ['finance_journal_entry.id'], name=op.f('fk_finance_settlement_journal_entry_id_finance_journal_entry')),
    sa.ForeignKeyConstraint(['loan_id'], ['lending_loan.id'], name=op.f('fk_finance_settlement_loan_id_lending_loan')),
    sa.ForeignKeyConstraint(['officer_confirmed_by_staff_id'], ['staff.id'], name=op.f('fk_finance_settlement_officer_confirmed_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['sales_confirmed_by_staff_id'], ['staff.id'], name=op.f('fk_finance_settlement_sales_confirmed_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['settled_by_staff_id'], ['staff.id'], name=op.f('fk_finance_settlement_settled_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['supervisor_confirmed_by_staff_id'], ['staff.id'], name=op.f('fk_finance_settlement_supervisor_confirmed_by_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_settlement')),
    sa.UniqueConstraint('agreement_id', name=op.f('uq_finance_settlement_agreement_id')),
    sa.UniqueConstraint('loan_id', name=op.f('uq_finance_settlement_loan_id'))
    )
    with op.batch_alter_table('finance_settlement', schema=None) as batch_op:
        batch_op.create_index('ix_finance_settlement_status', ['status', 'id'], unique=False)

    op.create_table('finance_customer_loan',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('agreement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('principal_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('interest_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cost_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('loan_date', sa.Date(), nullable=False),
    sa.Column('method', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('by_staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('journal_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('settlement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint("method IN ('cash', 'alipay', 'wechat', 'bank', 'withholding')", name=op.f('ck_finance_customer_loan_method_known')),
    sa.CheckConstraint("status IN ('outstanding', 'repaid')", name=op.f('ck_finance_customer_loan_status_known')),
    sa.CheckConstraint('principal_amount > 0 AND interest_amount >= 0 AND cost_amount >= 0', name=op.f('ck_finance_customer_loan_amounts_valid')),
    sa.ForeignKeyConstraint(['agreement_id'], ['finance_agreement.id'], name=op.f('fk_finance_customer_loan_agreement_id_finance_agreement')),
    sa.ForeignKeyConstraint(['by_staff_id'], ['staff.id'], name=op.f('fk_finance_customer_loan_by_staff_id_staff')),
    sa.ForeignKeyConstraint(['journal_entry_id'], ['finance_journal_entry.id'], name=op.f('fk_finance_customer_loan_journal_entry_id_finance_journal_entry')),
    sa.ForeignKeyConstraint(['settlement_id'], ['finance_settlement.id'], name=op.f('fk_finance_customer_loan_settlement_id_finance_settlement')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_customer_loan'))
    )
    with op.batch_alter_table('finance_customer_loan', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finance_customer_loan_agreement_id'), ['agreement_id'], unique=False)

    op.create_table('finance_settlement_fee',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('settlement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('fee_type_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_finance_settlement_fee_amount_positive')),
    sa.ForeignKeyConstraint(['fee_type_id'], ['finance_fee_type.id'], name=op.f('fk_finance_settlement_fee_fee_type_id_finance_fee_type')),
    sa.ForeignKeyConstraint(['settlement_id'], ['finance_settlement.id'], name=op.f('fk_finance_settlement_fee_settlement_id_finance_settlement')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_settlement_fee'))
    )
    with op.batch_alter_table('finance_settlement_fee', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finance_settlement_fee_settlement_id'), ['settlement_id'], unique=False)

    op.create_table('finance_settlement_payment',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('settlement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('method', sa.String(length=12), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint("method IN ('cash', 'alipay', 'wechat', 'bank', 'withholding')", name=op.f('ck_finance_settlement_payment_method_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_finance_settlement_payment_amount_positive')),
    sa.ForeignKeyConstraint(['settlement_id'], ['finance_settlement.id'], name=op.f('fk_finance_settlement_payment_settlement_id_finance_settlement')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_settlement_payment'))
    )
    with op.batch_alter_table('finance_settlement_payment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finance_settlement_payment_settlement_id'), ['settlement_id'], unique=False)

    op.create_table('finance_settlement_rebate',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('settlement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('partner', sa.String(length=80), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_finance_settlement_rebate_amount_positive')),
    sa.ForeignKeyConstraint(['settlement_id'], ['finance_settlement.id'], name=op.f('fk_finance_settlement_rebate_settlement_id_finance_settlement')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_settlement_rebate'))
    )
    with op.batch_alter_table('finance_settlement_rebate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finance_settlement_rebate_settlement_id'), ['settlement_id'], unique=False)

    for table in APPEND_ONLY:
        make_append_only(table)
    dialect = op.get_bind().dialect.name
    for statement in PG_GUARDS if dialect == 'postgresql' else SQLITE_GUARDS if dialect == 'sqlite' else ():
        op.execute(statement)
    op.bulk_insert(sa.table('finance_account', sa.column('code'), sa.column('number'), sa.column('name'),
                            sa.column('kind'), sa.column('balance_amount')),
                   [{'code': c, 'number': n, 'name': name, 'kind': k, 'balance_amount': 0} for c, n, name, k in ACCOUNTS])
    op.bulk_insert(sa.table('finance_fee_type', sa.column('code'), sa.column('name'), sa.column('active')),
                   [{'code': c, 'name': name, 'active': True} for c, name in FEE_TYPES])
    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    dialect = op.get_bind().dialect.name
    for statement in PG_DROP if dialect == 'postgresql' else SQLITE_DROP if dialect == 'sqlite' else ():
        op.execute(statement)
    for table in APPEND_ONLY:
        drop_append_only(table)
    with op.batch_alter_table('finance_settlement_rebate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finance_settlement_rebate_settlement_id'))

    op.drop_table('finance_settlement_rebate')
    with op.batch_alter_table('finance_settlement_payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finance_settlement_payment_settlement_id'))

    op.drop_table('finance_settlement_payment')
    with op.batch_alter_table('finance_settlement_fee', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finance_settlement_fee_settlement_id'))

    op.drop_table('finance_settlement_fee')
    with op.batch_alter_table('finance_customer_loan', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finance_customer_loan_agreement_id'))

    op.drop_table('finance_customer_loan')
    with op.batch_alter_table('finance_settlement', schema=None) as batch_op:
        batch_op.drop_index('ix_finance_settlement_status')

    op.drop_table('finance_settlement')
    with op.batch_alter_table('finance_deposit_refund', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finance_deposit_refund_deposit_id'))

    op.drop_table('finance_deposit_refund')
    with op.batch_alter_table('finance_reimbursement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finance_reimbursement_entered_by_staff_id'))
        batch_op.drop_index(batch_op.f('ix_finance_reimbursement_customer_id'))
        batch_op.drop_index(batch_op.f('ix_finance_reimbursement_agreement_id'))

    op.drop_table('finance_reimbursement')
    with op.batch_alter_table('finance_deposit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finance_deposit_agreement_id'))

    op.drop_table('finance_deposit')
    with op.batch_alter_table('finance_amendment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finance_amendment_agreement_id'))

    op.drop_table('finance_amendment')
    with op.batch_alter_table('finance_agreement', schema=None) as batch_op:
        batch_op.drop_index('ix_finance_agreement_status')
        batch_op.drop_index(batch_op.f('ix_finance_agreement_sales_staff_id'))
        batch_op.drop_index(batch_op.f('ix_finance_agreement_customer_id'))
        batch_op.drop_index(batch_op.f('ix_finance_agreement_case_officer_id'))

    op.drop_table('finance_agreement')
    with op.batch_alter_table('finance_journal_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finance_journal_line_entry_id'))
        batch_op.drop_index('ix_finance_journal_line_account')

    op.drop_table('finance_journal_line')
    op.drop_table('finance_period_close')
    with op.batch_alter_table('finance_journal_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_finance_journal_entry_source')
        batch_op.drop_index('ix_finance_journal_entry_period')

    op.drop_table('finance_journal_entry')
    op.drop_table('finance_fee_type')
    op.drop_table('finance_account')
    # ### end Alembic commands ###
