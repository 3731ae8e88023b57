"""The staff API of collections management, with the console's permissions: allocation rules (list, preview,
apply), scripts and the rendered script of a case, agencies (list, assign, recall), the analysis as JSON, and
telephony under /api/v1/collections (the first path still answers). Out of scope: 404; no permission: 403."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from crm import auth_service
from postloan import cases, scripts
from postloan.agency import service as agencies
from postloan.models import CollectionCase
from postloan.telephony.models import TelephonyCall
from tests.factories import make_customer, make_department, make_staff
from tests.lending_flow_support import V
from tests.servicing_support import days, on
from tests.test_admin_support import bearer, console_client
from tests.test_postloan_allocation import D, _open, _setup


@pytest.fixture
def world(session):
    w, loans, juniors, senior = _setup(session)
    on(D)
    from lending.servicing import cob

    cob.run_date(D)
    first, second = _open(session)
    outsider = make_staff(session, role="manager", department=make_department(session), data_scope="department")
    session.commit()
    return w, first, second, juniors, outsider


@pytest.fixture
def api(session):
    client = console_client()

    def call(method, url, staff, **kwargs):
        token = auth_service.issue_api_token(session, staff.id, "测试", 30)[0]
        session.commit()
        return client.request(method, url, headers=bearer(token), **kwargs)

    return call


def test_rules_list_preview_and_apply(session, world, api):
    w, first, _, juniors, _ = world
    assert api("GET", "/api/v1/collections/rules", juniors[0]).status_code == 403
    listed = api("GET", "/api/v1/collections/rules", w.manager)
    assert listed.status_code == 200 and {r["name"] for r in listed.json()} == {"长账龄或高风险", "高风险", "M1"}
    holder = first.collector_staff_id
    cases.assign_case(session, first.id, None, viewer=V(w.manager))
    session.commit()
    assert api("GET", "/api/v1/collections/rules/preview", juniors[0]).status_code == 403
    preview = api("GET", "/api/v1/collections/rules/preview?scope=unassigned", w.manager)
    assert preview.status_code == 200 and preview.json()["moves"] == 1
    rows = {r["staff_id"]: r for r in preview.json()["rows"]}
    assert sum(r["new"] for r in rows.values()) == 1 and all(r["after"] == r["current"] + r["new"] - r["lose"]
                                                              for r in rows.values())
    session.expire_all()
    assert session.get(CollectionCase, first.id).collector_staff_id is None  # a preview writes nothing
    assert api("GET", "/api/v1/collections/rules/preview?scope=everything", w.manager).status_code == 422
    assert api("POST", "/api/v1/collections/rules/apply", juniors[0], json={"scope": "unassigned"}).status_code == 403
    applied = api("POST", "/api/v1/collections/rules/apply", w.manager, json={"scope": "unassigned"})
    assert applied.status_code == 200 and applied.json() == {"changed": 1}
    session.expire_all()
    assert session.get(CollectionCase, first.id).collector_staff_id in {j.id for j in juniors} | {holder}


def test_scripts_list_and_the_case_detail_carries_the_rendered_script(session, world, api):
    w, first, _, juniors, outsider = world
    scripts.save_script(session, V(w.manager), name="M1 首催", bucket="M1", body="{name}您好，您已逾期 {days_overdue} 天。")
    session.commit()
    assert api("GET", "/api/v1/collections/scripts", juniors[0]).status_code == 403
    listed = api("GET", "/api/v1/collections/scripts", w.manager)
    assert listed.status_code == 200 and [s["name"] for s in listed.json()] == ["M1 首催"]
    holder = next(j for j in juniors if j.id == first.collector_staff_id)
    detail = api("GET", f"/api/v1/collections/cases/{first.id}", holder)
    assert detail.status_code == 200 and detail.json()["script_name"] == "M1 首催"
    assert f"您已逾期 {first.overdue_days} 天" in detail.json()["script_text"] and "{" not in detail.json()["script_text"]
    assert api("GET", f"/api/v1/collections/cases/{first.id}", outsider).status_code == 404


def test_agencies_list_assign_and_recall_within_scope(session, world, api):
    w, first, _, juniors, outsider = world
    agency = agencies.create_agency(session, V(w.manager), name="华东催收服务", commission_rate=Decimal("0.15"))
    session.commit()
    assert api("GET", "/api/v1/collections/agencies", juniors[0]).status_code == 403
    listed = api("GET", "/api/v1/collections/agencies", w.manager)
    assert listed.status_code == 200 and listed.json()[0]["name"] == "华东催收服务"
    url = f"/api/v1/collections/agencies/{agency.id}/cases"
    assert api("POST", url, juniors[0], json={"case_id": first.id}).status_code == 403
    assert api("POST", url, outsider, json={"case_id": first.id}).status_code == 404  # not in their subtree
    assigned = api("POST", url, w.manager, json={"case_id": first.id})
    assert assigned.status_code == 201 and assigned.json()["case_id"] == first.id
    assert Decimal(assigned.json()["commission_rate"]) == Decimal("0.15")
    assert api("POST", url, w.manager, json={"case_id": first.id}).status_code == 409
    recall = f"/api/v1/collections/cases/{first.id}/recall"
    assert api("POST", recall, outsider, json={"reason": "x"}).status_code == 404
    back = api("POST", recall, w.manager, json={"reason": "效果不佳"})
    assert back.status_code == 200 and back.json()["recalled_at"] and back.json()["recall_reason"] == "效果不佳"
    assert api("POST", recall, w.manager).status_code == 404  # nothing out any more


def test_the_analysis_as_json_within_scope(session, world, api):
    w, first, second, juniors, outsider = world
    assert api("GET", "/api/v1/collections/analysis", juniors[0]).status_code == 403
    query = f"?from={D - days(1)}&to={D}"
    mine = api("GET", "/api/v1/collections/analysis" + query, w.manager)
    assert mine.status_code == 200 and sum(r["cases"] for r in mine.json()["collectors"]) == 2
    assert {"recovered", "recovery_rate"} <= set(mine.json()["regions"][0])
    theirs = api("GET", "/api/v1/collections/analysis" + query, outsider)
    assert theirs.status_code == 200 and theirs.json()["collectors"] == [] and theirs.json()["groups"] == []
    bad = api("GET", f"/api/v1/collections/analysis?from={D}&to={D - days(1)}", w.manager)
    assert bad.status_code == 422


def test_telephony_under_collections_and_the_named_permission_to_read_any_call(session, world, api):
    w, first, _, juniors, _ = world
    holder = next(j for j in juniors if j.id == first.collector_staff_id)
    other = next(j for j in juniors if j.id != holder.id)
    mine = make_customer(session, phone="13755558888", owner=holder)
    session.commit()
    placed = api("POST", "/api/v1/collections/calls", holder, json={"customer_id": mine.id})
    assert placed.status_code == 201 and "13755558888" not in placed.text
    call_id = placed.json()["id"]
    assert api("GET", f"/api/v1/postloan/calls/{call_id}", holder).status_code == 200  # the first path still works
    assert api("GET", f"/api/v1/collections/calls/{call_id}", other).status_code == 404
    assert api("GET", f"/api/v1/collections/calls/{call_id}", w.manager).status_code == 200
    assert session.scalar(select(TelephonyCall.id)) == call_id
    spec = console_client().get("/api/openapi.json").json()["paths"]
    for path in ("/api/v1/collections/rules", "/api/v1/collections/rules/preview", "/api/v1/collections/rules/apply",
                 "/api/v1/collections/scripts", "/api/v1/collections/agencies",
                 "/api/v1/collections/agencies/{agency_id}/cases", "/api/v1/collections/cases/{case_id}/recall",
                 "/api/v1/collections/analysis", "/api/v1/collections/calls/{call_id}"):
        assert path in spec, path
    assert not any(p.startswith("/api/v1/postloan") for p in spec)
