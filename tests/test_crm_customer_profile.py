"""Qualification profile (资质) and custom fields (自定义字段): sealed figures, masked reads, logged reveals,
validation that changes nothing, the staff API, the console 360, and their use by matching, risk, the
customer list filter and segments (issue 17 section 2)."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from crm import auth_service, custom_fields, qualification, segments
from crm.models import Customer, CustomerQualification, CustomField, CustomFieldValue
from crm.scope import Viewer
from lending.matching import profile_of
from tests.factories import make_customer, make_org, make_staff
from tests.test_admin_support import audit_count, bearer, console_client, log_in


@pytest.fixture
def people(session):
    org = make_org(session)
    return {"manager": make_staff(session, role="manager", department=org["company"], password=None),
            "sales": make_staff(session, department=org["team_a"], display_name="一组销售", password=None),
            "other": make_staff(session, department=org["team_b"], password=None)}


@pytest.fixture
def api(session):
    client = console_client()

    def call(method, url, staff, **kwargs):
        token = auth_service.issue_api_token(session, staff.id, "测试", 30)[0]
        return client.request(method, url, headers=bearer(token), **kwargs)

    return call


@pytest.fixture
def fields(session, people):
    manager = Viewer.of(people["manager"])
    return {
        "years": custom_fields.create_field(session, manager, {"key": "work_years", "label": "工作年限",
                                                               "field_type": "number", "show_in_list": True}),
        "house": custom_fields.create_field(session, manager, {
            "key": "house_area", "label": "房产区域", "field_type": "choice", "options": ["城区", "郊区"],
            "required": True, "customer_types": ["mortgage"]}),
        "since": custom_fields.create_field(session, manager, {"key": "hired_on", "label": "入职日期",
                                                               "field_type": "date"}),
        "wechat": custom_fields.create_field(session, manager, {"key": "spouse_name", "label": "配偶姓名",
                                                                "field_type": "text", "sensitive": True}),
    }


def _count(session, model):
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def test_qualification_is_sealed_shown_masked_and_revealed_with_an_audit_row(session, people, api):
    customer = make_customer(session, owner=people["sales"], name="资质客户")
    body = {"employment_type": "企业员工", "employer": "杭州某某科技有限公司", "income_monthly_amount": "23456.00",
            "social_insurance_months": 36, "provident_fund_months": "24", "property_status": "mortgage",
            "debt_monthly_amount": "4691.20", "credit_level": "good"}
    read = api("PUT", f"/api/v1/customers/{customer.id}/qualification", people["sales"], json=body)
    assert read.status_code == 200, read.text
    shown = {f["name"]: f for f in read.json()["fields"]}
    assert shown["employment_type"]["shown"] == "企业员工" and shown["social_insurance_months"]["value"] == 36
    assert shown["income_monthly_amount"]["shown"] == "2**** 元" and shown["income_monthly_amount"]["masked"]
    assert shown["employer"]["value"] is None and "某某" not in read.text and "23456" not in read.text
    assert read.json()["income_band"] == "2万–5万"
    row = session.get(CustomerQualification, customer.id)
    assert "杭州" not in row.sealed and "23456" not in row.sealed and row.income_band == "20k_50k"

    before = audit_count(session, "pii.reveal")
    revealed = api("POST", f"/api/v1/customers/{customer.id}/qualification/reveal", people["sales"],
                   json={"reason": "核对收入"})
    assert revealed.json()["fields"]["工作单位"] == "杭州某某科技有限公司"
    assert revealed.json()["fields"]["月收入（元）"] == "¥23,456.00"
    assert revealed.headers["cache-control"] == "no-store"
    assert audit_count(session, "pii.reveal") == before + 1
    # another team's salesperson sees neither
    assert api("GET", f"/api/v1/customers/{customer.id}/qualification", people["other"]).status_code == 404

    # matching and the risk facts read the opened profile
    assert profile_of(customer).income_monthly == 2345600
    assert qualification.qualification_of(session, customer.id).debt_ratio == Decimal("0.2000")


@pytest.mark.parametrize(("body", "message"), [
    ({"income_monthly_amount": "一万"}, "月收入格式不正确"),
    ({"income_monthly_amount": 8000.5}, "月收入格式不正确：请填写以元为单位的数字文本（如 \"8000.00\"），不接受浮点数"),
    ({"social_insurance_months": "三年"}, "社保缴纳月数必须是 0 或正整数"),
    ({"property_status": "别墅"}, "房产只能是：无房、全款房、按揭房"),
    ({"nickname": "x"}, "nickname是未知字段"),
    ({"employer": 12}, "工作单位必须是文字"),
])
def test_bad_qualification_input_changes_nothing(session, people, api, body, message):
    customer = make_customer(session, owner=people["sales"])
    qualification.update(session, Viewer.of(people["sales"]), customer.id, {"industry": "制造业"})
    sealed_before = session.get(CustomerQualification, customer.id).sealed
    res = api("PUT", f"/api/v1/customers/{customer.id}/qualification", people["sales"],
              json={"industry": "金融", **body})
    assert res.status_code == 422
    assert message in res.json()["message"]
    session.expire_all()
    row = session.get(CustomerQualification, customer.id)
    assert (row.industry, row.sealed) == ("制造业", sealed_before)


def test_custom_field_values_are_validated_together_and_nothing_is_written(session, people, api, fields):
    customer = make_customer(session, owner=people["sales"], customer_type="mortgage")
    bad = api("PUT", f"/api/v1/customers/{customer.id}/fields", people["sales"],
              json={"work_years": 5.5, "hired_on": "2024/01/31", "house_area": "市中心"})
    assert bad.status_code == 422
    message = bad.json()["message"]
    assert "「工作年限」请填写数字文本（如 \"12.5\"），不接受浮点数" in message and "「入职日期」日期格式应为 YYYY-MM-DD" in message
    assert "「房产区域」只能选：城区、郊区" in message
    missing = api("PUT", f"/api/v1/customers/{customer.id}/fields", people["sales"], json={"work_years": "5"})
    assert missing.status_code == 422 and "「房产区域」为必填项" in missing.json()["message"]
    assert _count(session, CustomFieldValue) == 0

    good = api("PUT", f"/api/v1/customers/{customer.id}/fields", people["sales"],
               json={"work_years": "5.5", "hired_on": "2024-01-31", "house_area": "城区", "spouse_name": "李小红"})
    assert good.status_code == 200, good.text
    values = {f["key"]: f["value"] for f in good.json()["fields"]}
    assert values == {"work_years": "5.5", "house_area": "城区", "hired_on": "2024-01-31", "spouse_name": "***"}
    assert "李小红" not in str(session.scalars(select(CustomFieldValue.sealed_value)).all())
    revealed = api("POST", f"/api/v1/customers/{customer.id}/fields/spouse_name/reveal", people["sales"])
    assert revealed.json()["fields"] == {"spouse_name": "李小红"}

    # a credit customer: the mortgage-only required field does not apply
    credit = make_customer(session, owner=people["sales"], customer_type="credit")
    assert custom_fields.set_values(session, Viewer.of(people["sales"]), credit.id, {"work_years": "2"}) == ["工作年限"]
    assert "house_area" not in {f["key"] for f in custom_fields.shown_values(session, credit)}

    # the API's customer list filters on them too
    listed = api("GET", "/api/v1/customers", people["sales"],
                 params={"cf_field": "custom.house_area", "cf_cmp": "in", "cf_value": "城区"}).json()
    assert [i["id"] for i in listed["items"]] == [customer.id]

    # definitions: managers only, bad ones refused in Chinese
    assert api("POST", "/api/v1/custom-fields", people["sales"],
               json={"key": "x_y", "label": "新", "field_type": "text"}).status_code == 403
    refused = api("POST", "/api/v1/custom-fields", people["manager"],
                  json={"key": "level", "label": "等级二", "field_type": "choice"})
    assert refused.status_code == 422 and refused.json()["message"] == "单选字段请至少填写一个选项"
    changed = api("PUT", f"/api/v1/custom-fields/{fields['house'].id}", people["manager"],
                  json={"label": "房产区域", "options": ["城区"], "required": True})
    assert changed.status_code == 422 and "已有的选项不能删除：郊区" in changed.json()["message"]


def test_list_filter_and_segment_on_custom_fields_and_qualification(session, people, fields):
    sales = Viewer.of(people["sales"])
    senior = make_customer(session, owner=people["sales"], name="老员工")
    junior = make_customer(session, owner=people["sales"], name="新员工")
    custom_fields.set_values(session, sales, senior.id, {"work_years": "12"})
    custom_fields.set_values(session, sales, junior.id, {"work_years": "1"})
    qualification.update(session, sales, senior.id, {"social_insurance_months": "60", "property_status": "full"})
    rule = {"op": "and", "rules": [
        {"field": "custom.work_years", "cmp": "gte", "value": "10"},
        {"field": "qualification.social_insurance_months", "cmp": "gte", "value": 24},
        {"field": "qualification.property_status", "cmp": "in", "value": ["full", "mortgage"]}]}
    assert [m.name for m in segments.preview(session, sales, rule).members] == ["老员工"]
    saved = segments.create_segment(session, Viewer.of(people["manager"]), "老员工有房", rule)
    assert segments.member_count(session, saved) == 1  # re-parsed from its stored JSON, no session
    with pytest.raises(Exception, match="「工作年限」必须是数字"):
        segments.parse_rule({"op": "and", "rules": [{"field": "custom.work_years", "cmp": "gte", "value": "十"}]},
                            session)
    client = console_client()
    log_in(client, session, people["sales"])
    page = client.get("/console/customers", params={"cf_field": "custom.work_years", "cf_cmp": "gte",
                                                    "cf_value": "10"}).text
    assert "老员工" in page and "新员工" not in page and "工作年限" in page
    # the console's segment builder offers the same fields as rows (a code by its Chinese label)
    csrf = log_in(client, session, people["sales"])
    row = {"csrf_token": csrf, "groups": "1", "top_op": "and", "g0_op": "and", "action": "preview",
           "g0_field": ["custom.work_years", "qualification.property_status"], "g0_cmp": ["gte", "in"],
           "g0_value": ["10", "全款房"]}
    built = client.post("/console/segments/build", data=row)
    assert built.status_code == 200 and 'class="preview-total">1<' in built.text and "资质·房产" in built.text
    bad = client.post("/console/segments/build", data=row | {"g0_value": ["十年", "全款房"]})
    assert bad.status_code == 422 and "「工作年限」必须是数字" in bad.text
    # the list's export (a background job) rebuilds the list with the same profile filter
    from analytics import export_jobs

    manager = console_client()
    csrf = log_in(manager, session, people["manager"])
    res = manager.post("/console/exports/customers", data={"csrf_token": csrf, "cf_field": "qualification.property_status",
                                                          "cf_cmp": "in", "cf_value": "全款房"}, follow_redirects=False)
    job_id = int(res.headers["location"].rsplit("/", 1)[1])
    assert export_jobs.run(job_id) == "done"
    sheet = load_workbook(io.BytesIO(manager.get(f"/console/exports/{job_id}/file").content)).active
    header = [c.value for c in sheet[1]]
    assert [r[1] for r in sheet.iter_rows(min_row=2, values_only=True)] == ["老员工"]
    assert sheet.cell(2, header.index("工作年限") + 1).value == "12"
    assert sheet.cell(2, header.index("社保月数") + 1).value == 60


def test_console_360_saves_and_refuses_profile_edits(session, people, fields):
    customer = make_customer(session, owner=people["sales"], customer_type="mortgage", name="三六零")
    client = console_client()
    csrf = log_in(client, session, people["sales"])
    page = client.get(f"/console/customers/{customer.id}").text
    assert "资质" in page and "房产区域" in page and "尚未填写资质" in page
    bad = client.post(f"/console/customers/{customer.id}/qualification",
                      data={"csrf_token": csrf, "income_monthly_amount": "-5", "industry": "餐饮"})
    assert bad.status_code == 422 and "月收入不能为负数" in bad.text
    assert 'name="industry" value="餐饮"' in bad.text and 'value="-5"' in bad.text  # typed values stay
    assert session.get(CustomerQualification, customer.id) is None
    ok = client.post(f"/console/customers/{customer.id}/qualification",
                     data={"csrf_token": csrf, "income_monthly_amount": "9000", "industry": "餐饮", "car_status": "full"})
    assert ok.status_code == 303
    # the sealed figure left empty on the next save stays as it was
    client.post(f"/console/customers/{customer.id}/qualification",
                data={"csrf_token": csrf, "income_monthly_amount": "", "industry": "零售", "car_status": "full"})
    assert qualification.qualification_of(session, customer.id).values["income_monthly_amount"] == 900000
    page = client.get(f"/console/customers/{customer.id}").text
    assert "零售" in page and "9,000" not in page and "9*** 元" in page
    missing = client.post(f"/console/customers/{customer.id}/fields", data={"csrf_token": csrf, "cf_work_years": "3"})
    assert missing.status_code == 422 and "「房产区域」为必填项" in missing.text
    assert _count(session, CustomFieldValue) == 0

    # the new-customer form carries the fields; a required one missing refuses the whole intake
    new = {"csrf_token": csrf, "name": "新客户", "phone": "13700001111", "customer_type": "mortgage",
           "destination": "mine", "cf_work_years": "8"}
    refused = client.post("/console/customers/new", data=new)
    assert refused.status_code == 422 and "「房产区域」为必填项" in refused.text
    assert 'value="8"' in refused.text  # what was typed stays on the form
    assert session.scalar(select(func.count()).select_from(Customer).where(Customer.name == "新客户")) == 0
    created = client.post("/console/customers/new", data=new | {"cf_house_area": "郊区"})
    assert created.status_code == 303
    made = session.scalar(select(Customer).where(Customer.name == "新客户"))
    assert {v["key"]: v["value"] for v in custom_fields.shown_values(session, made)}["house_area"] == "郊区"

    manager = console_client()
    mcsrf = log_in(manager, session, people["manager"])
    created = manager.post("/console/settings/custom-fields", data={
        "csrf_token": mcsrf, "key": "Bad Key", "label": "渠道经理", "field_type": "text"})
    assert created.status_code == 422 and "字段代码只能用小写英文字母" in created.text
    assert _count(session, CustomField) == 4
    assert client.get("/console/settings/custom-fields").status_code == 403
