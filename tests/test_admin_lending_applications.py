"""Console pages and JSON API of loan applications and the workflow designer."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core import clock
from crm import auth_service
from lending import applications, contracts
from lending.models import Application, Contract, Loan, WorkflowDefinition
from lending.workflow import definitions
from tests.lending_flow_support import AMOUNT, V, advance_to, count, freeze, make_world, node, satisfy, start
from tests.test_admin_support import bearer, console_client, log_in


def _token(session, staff) -> str:
    token, _ = auth_service.issue_api_token(session, staff.id, "测试")
    return token


def test_start_from_the_customer_page_creates_the_application(session):
    w = make_world(session)
    client = console_client()
    csrf = log_in(client, session, w.sales)
    page = client.get(f"/console/customers/{w.customer.id}")
    assert f"/console/lending/applications/new?customer_id={w.customer.id}" in page.text
    form = client.get(f"/console/lending/applications/new?customer_id={w.customer.id}")
    assert form.status_code == 200 and w.product.name in form.text
    response = client.post("/console/lending/applications", data={
        "csrf_token": csrf, "customer_id": w.customer.id, "product_version_id": w.version_id, "amount": "50,000",
        "term_months": "12"})
    assert response.status_code == 303, response.text
    app = session.scalar(select(Application))
    assert app.requested_amount == AMOUNT and response.headers["location"].startswith(
        f"/console/lending/applications/{app.id}")


def test_the_new_application_page_matches_products_to_the_typed_amount(session):
    from tests.lending_product_factories import make_product

    w = make_world(session)
    small = make_product(session, name="小额快贷", min_amount=100_000, max_amount=2_000_000, terms_months=[6, 12])
    client = console_client()
    csrf = log_in(client, session, w.sales)
    page = client.get(f"/console/lending/applications/new?customer_id={w.customer.id}&amount=5万&term_months=12").text
    eligible, _, excluded = page.partition("不适合的产品")
    assert w.product.name in eligible and "综合年化 <strong>12.00%</strong>" in eligible
    assert small.name in excluded and "不在 ¥1,000.00 – ¥20,000.00 之间" in excluded
    fragment = client.get("/console/lending/applications/new/match", params={
        "customer_id": w.customer.id, "amount": "8,000元", "term_months": "6"}).text
    assert fragment.startswith('<div id="product-match">') and "<html" not in fragment
    assert fragment.index(small.name) < fragment.index("不适合的产品") < fragment.index(w.product.name)
    response = client.post("/console/lending/applications", data={
        "csrf_token": csrf, "customer_id": w.customer.id, "product_version_id": w.version_id, "amount": "5万",
        "term_months": "12"})
    assert response.status_code == 303
    assert session.scalar(select(Application)).requested_amount == AMOUNT


def test_a_refused_start_shows_the_chinese_reason_and_writes_nothing(session):
    w = make_world(session)
    client = console_client()
    csrf = log_in(client, session, w.sales)
    response = client.post("/console/lending/applications", data={
        "csrf_token": csrf, "customer_id": w.customer.id, "product_version_id": w.version_id, "amount": "1",
        "term_months": "12"})
    assert response.status_code == 422 and "不在产品允许的" in response.text
    assert count(session, Application) == 0


def test_a_start_without_csrf_is_refused(session):
    w = make_world(session)
    client = console_client()
    log_in(client, session, w.sales)
    response = client.post("/console/lending/applications", data={
        "customer_id": w.customer.id, "product_version_id": w.version_id, "amount": "50000", "term_months": "12"})
    assert response.status_code == 403 and count(session, Application) == 0


def test_the_application_page_shows_quote_checklist_and_actions(session):
    w = make_world(session)
    app = start(session, w)
    client = console_client()
    log_in(client, session, w.sales)
    page = client.get(f"/console/lending/applications/{app.id}")
    assert page.status_code == 200
    for text in ("综合年化成本", "借款用途", "身份证", "拒绝原因（必填）", "进件", "贷后", "已停留"):
        assert text in page.text, text
    assert "李*" in page.text and "李四" not in page.text  # the customer summary is masked
    assert w.customer.phone_masked in page.text


def test_approve_and_reject_through_the_console(session):
    w = make_world(session)
    app = start(session, w)
    satisfy(session, app, V(w.sales))
    client = console_client()
    csrf = log_in(client, session, w.sales)
    r = client.post(f"/console/lending/applications/{app.id}/approve",
                    data={"csrf_token": csrf, "comment": "资料齐全", "node_id": app.current_node_id})
    assert r.status_code == 303
    session.refresh(app)
    assert node(session, app).code == "first_review"
    r = client.post(f"/console/lending/applications/{app.id}/reject", data={"csrf_token": csrf, "reason": ""})
    assert r.status_code == 422 and "请填写拒绝原因" in r.text
    mgr_client = console_client()
    mgr_csrf = log_in(mgr_client, session, w.manager)
    r = mgr_client.post(f"/console/lending/applications/{app.id}/reject",
                        data={"csrf_token": mgr_csrf, "reason": "收入不足"})
    assert r.status_code == 303
    session.refresh(app)
    assert app.status == "rejected"


def test_a_missing_document_blocks_the_console_approval(session):
    w = make_world(session)
    app = start(session, w)
    client = console_client()
    csrf = log_in(client, session, w.sales)
    client.post(f"/console/lending/applications/{app.id}/fields", data={"csrf_token": csrf, "field_purpose": "装修"})
    r = client.post(f"/console/lending/applications/{app.id}/approve", data={"csrf_token": csrf})
    assert r.status_code == 422 and "还缺少：身份证" in r.text
    client.post(f"/console/lending/applications/{app.id}/documents", data={"csrf_token": csrf, "kind": "身份证"})
    assert client.post(f"/console/lending/applications/{app.id}/approve",
                       data={"csrf_token": csrf}).status_code == 303


def test_another_salespersons_application_is_404_in_console_and_api(session):
    w = make_world(session)
    app = start(session, w)
    client = console_client()
    csrf = log_in(client, session, w.other_sales)
    assert client.get(f"/console/lending/applications/{app.id}").status_code == 404
    assert client.post(f"/console/lending/applications/{app.id}/withdraw",
                       data={"csrf_token": csrf, "reason": "越权"}).status_code == 404
    api = console_client()
    token = _token(session, w.other_sales)
    assert api.get(f"/api/v1/lending/applications/{app.id}", headers=bearer(token)).status_code == 404
    assert api.get("/api/v1/lending/applications", headers=bearer(token)).json() == []
    board = client.get("/console/lending/applications")
    assert board.status_code == 200 and f"#{app.id} " not in board.text
    session.refresh(app)
    assert app.status == "intake"


def test_the_board_shows_counts_dwell_and_sla_breaches(session):
    freeze()
    w = make_world(session)
    app = start(session, w)
    clock.advance(timedelta(hours=26))
    client = console_client()
    log_in(client, session, w.manager)
    page = client.get("/console/lending/applications")
    assert page.status_code == 200
    assert f"#{app.id} 李四" in page.text and "已停留 26 小时" in page.text and "超时 1" in page.text
    assert "breached" in page.text
    filtered = client.get(f"/console/lending/applications?product_id={w.product.id + 999}")
    assert f"#{app.id} 李四" not in filtered.text


def test_sign_print_and_disburse_through_the_console(session, task_runner):
    w = make_world(session)
    app = advance_to(session, w, start(session, w), "signing")
    client = console_client()
    csrf = log_in(client, session, w.sales)
    assert client.post(f"/console/lending/applications/{app.id}/sign", data={"csrf_token": csrf}).status_code == 303
    again = client.post(f"/console/lending/applications/{app.id}/sign", data={"csrf_token": csrf})
    assert again.status_code == 409 and "不能重复签署" in again.text
    contract = session.scalar(select(Contract))
    printed = client.get(f"/console/lending/contracts/{contract.id}/print")
    assert printed.status_code == 200 and contract.number in printed.text and "@media print" not in printed.text
    assert "还款计划" in printed.text and "lending_flow.css" in printed.text
    refused = client.post(f"/console/lending/applications/{app.id}/disburse",
                          data={"csrf_token": csrf, "funder_reference": "X1"})
    assert refused.status_code == 403
    fin = console_client()
    fcsrf = log_in(fin, session, w.finance)
    ok = fin.post(f"/console/lending/applications/{app.id}/disburse",
                  data={"csrf_token": fcsrf, "funder_reference": "BANK-77", "amount": "50000.00"})
    assert ok.status_code == 303, ok.text
    assert session.scalar(select(Loan)).principal_amount == AMOUNT


def test_the_workflow_designer_saves_a_new_version_and_running_applications_keep_theirs(session):
    w = make_world(session)
    app = start(session, w)
    old_definition = app.definition_id
    client = console_client()
    csrf = log_in(client, session, w.manager)
    page = client.get("/console/lending/workflow")
    assert page.status_code == 200 and "初审" in page.text
    rows = [("1", "intake", "进件", "intake", "sales", "", "24", "purpose", "身份证"),
            ("3", "first_review", "风控初审", "review", "risk", "", "8", "", ""),
            ("2", "precheck", "预审", "review", "supervisor", "", "4", "", ""),
            ("4", "signing", "签约", "signing", "sales", "", "48", "", ""),
            ("5", "disbursement", "放款", "disbursement", "finance", "", "24", "", ""),
            ("6", "servicing", "贷后", "servicing", "", "", "", "", "")]
    data = {"csrf_token": csrf, "rows": str(len(rows) + 1), "note": "加预审"}
    for i, r in enumerate(rows):
        for k, v in zip(("position", "code", "name", "kind", "role", "staff", "sla", "fields", "docs"), r, strict=True):
            data[f"{k}_{i}"] = v
    data.update({"position_6": "7", "code_6": "second_review", "name_6": "复审", "kind_6": "review", "delete_6": "1"})
    response = client.post("/console/lending/workflow", data=data)
    assert response.status_code == 303, response.text
    active = definitions.active_definition(session)
    assert active.id != old_definition and active.version == 2
    assert [n.name for n in definitions.nodes_of(session, active.id)] == ["进件", "预审", "风控初审", "签约", "放款", "贷后"]
    satisfy(session, app, V(w.sales))
    applications.approve(session, app.id, viewer=V(w.sales))
    assert node(session, app).code == "first_review" and app.definition_id == old_definition
    from tests.lending_product_factories import make_product

    other = make_product(session)
    new_app = applications.start_application(session, w.customer.id, other.current_version_id, AMOUNT, 24,
                                             viewer=V(w.manager))
    assert new_app.definition_id == active.id
    satisfy(session, new_app, V(w.manager))
    applications.approve(session, new_app.id, viewer=V(w.manager))
    assert node(session, new_app).name == "预审"


def test_an_invalid_workflow_is_refused_with_the_reason(session):
    w = make_world(session)
    client = console_client()
    csrf = log_in(client, session, w.manager)
    client.get("/console/lending/workflow")
    data = {"csrf_token": csrf, "rows": "2", "position_0": "1", "code_0": "intake", "name_0": "进件", "kind_0": "intake",
            "position_1": "2", "code_1": "servicing", "name_1": "贷后", "kind_1": "servicing"}
    response = client.post("/console/lending/workflow", data=data)
    assert response.status_code == 422 and "签约" in response.text
    assert count(session, WorkflowDefinition) == 1


def test_sales_cannot_open_the_designer(session):
    w = make_world(session)
    client = console_client()
    log_in(client, session, w.sales)
    assert client.get("/console/lending/workflow").status_code == 403


def test_the_api_starts_moves_signs_and_disburses(session):
    w = make_world(session)
    api = console_client()
    sales, mgr, fin = (bearer(_token(session, s)) for s in (w.sales, w.manager, w.finance))
    r = api.post("/api/v1/lending/applications", headers=sales, json={
        "customer_id": w.customer.id, "product_version_id": w.version_id, "amount": AMOUNT, "term_months": 12,
        "idempotency_key": "k1"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["node_code"] == "intake" and body["status"] == "intake"
    assert api.post("/api/v1/lending/applications", headers=sales, json={
        "customer_id": w.customer.id, "product_version_id": w.version_id, "amount": AMOUNT, "term_months": 12,
        "idempotency_key": "k1"}).json()["id"] == body["id"]
    app_id = body["id"]
    missing = api.post(f"/api/v1/lending/applications/{app_id}/approve", headers=sales, json={})
    assert missing.status_code == 422 and missing.json()["code"] == "requirements_missing"
    api.post(f"/api/v1/lending/applications/{app_id}/fields", headers=sales, json={"fields": {"purpose": "经营"}})
    api.post(f"/api/v1/lending/applications/{app_id}/documents", headers=sales, json={"kind": "身份证"})
    skip = api.post(f"/api/v1/lending/applications/{app_id}/approve", headers=sales, json={"to_node_code": "signing"})
    assert skip.status_code == 409 and skip.json()["code"] == "transition_refused"
    assert api.post(f"/api/v1/lending/applications/{app_id}/approve", headers=sales, json={}).json()["node_code"] \
        == "first_review"
    app = session.get(Application, app_id)
    advance_to(session, w, app, "signing")
    signed = api.post(f"/api/v1/lending/applications/{app_id}/contract/sign", headers=mgr)
    assert signed.status_code == 200 and signed.json()["snapshot"]["quote"]["totals"]["principal"] == AMOUNT
    assert api.post(f"/api/v1/lending/applications/{app_id}/contract/sign", headers=mgr).json()["code"] \
        == "contract_already_signed"
    loan = api.post(f"/api/v1/lending/applications/{app_id}/disbursement", headers=fin,
                    json={"funder_reference": "API-1"})
    assert loan.status_code == 201 and loan.json()["principal_amount"] == AMOUNT
    twice = api.post(f"/api/v1/lending/applications/{app_id}/disbursement", headers=fin,
                     json={"funder_reference": "API-2"})
    assert twice.status_code == 409 and twice.json()["code"] == "already_disbursed"
    assert contracts.contract_for(session, app_id).status == "disbursed"


def test_the_api_is_in_the_openapi_document(session):
    schema = console_client().get("/api/openapi.json").json()
    paths = schema["paths"]
    assert "/api/v1/lending/applications" in paths
    assert "/api/v1/lending/applications/{application_id}/disbursement" in paths
    assert paths["/api/v1/lending/applications"]["post"]["summary"] == "发起贷款申请"


def test_the_contract_print_shows_the_borrowers_full_name_and_id_number_as_an_audited_reveal(session):
    from core.audit import AuditLog
    from crm import customers
    from crm.scope import Viewer

    w = make_world(session)
    customers.update_profile(session, Viewer.of(w.sales), w.customer.id, {"id_number": "11010519491231002X"})
    app = advance_to(session, w, start(session, w), "signing")
    client = console_client()
    csrf = log_in(client, session, w.sales)
    client.post(f"/console/lending/applications/{app.id}/sign", data={"csrf_token": csrf})
    contract = session.scalar(select(Contract))
    printed = client.get(f"/console/lending/contracts/{contract.id}/print").text
    assert "李四" in printed and "11010519491231002X" in printed and "李*" not in printed
    reveal = session.scalars(select(AuditLog).where(AuditLog.action == "pii.reveal")).all()[-1]
    assert reveal.entity_id == str(w.customer.id) and contract.number in reveal.detail
    assert reveal.actor_id == w.sales.id
