"""Console and API handover: opening from the staff page, the case page, execution, scope and roles."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm import auth_service
from crm.models import Customer, HandoverCase, Staff, WeComTransfer
from tests.factories import make_customer, make_org, make_staff
from tests.test_admin_support import bearer, console_client, log_in


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def manager(session, org):
    return make_staff(session, role="manager", department=org["branch"], display_name="李经理")


@pytest.fixture
def leaver(session, org):
    return make_staff(session, department=org["team_a"], display_name="离职小王", wecom_userid="WangWx")


def _client(session, staff):
    client = console_client()
    return client, log_in(client, session, staff)


def _open(client, csrf, staff_id):
    return client.post("/console/handover/new", data={"csrf_token": csrf, "staff_id": staff_id, "kind": "departure"})


def test_the_staff_page_links_to_the_handover(session, manager, leaver):
    client, _ = _client(session, manager)
    assert f"/console/handover/new?staff_id={leaver.id}" in client.get(f"/console/staff/{leaver.id}").text


def test_opening_a_departure_case_marks_departed_and_shows_the_case(session, manager, leaver):
    make_customer(session, owner=leaver, name="客户甲", phone="13900001111")
    client, csrf = _client(session, manager)
    response = _open(client, csrf, leaver.id)
    assert response.status_code == 303
    case = session.scalar(select(HandoverCase).where(HandoverCase.from_staff_id == leaver.id))
    assert response.headers["location"].startswith(f"/console/handover/{case.id}")
    session.refresh(leaver)
    assert leaver.status == "departed"
    page = client.get(f"/console/handover/{case.id}").text
    assert "客户甲" in page and "139****1111" in page and "13900001111" not in page


def test_opening_without_the_csrf_token_is_refused(session, manager, leaver):
    client, _ = _client(session, manager)
    response = client.post("/console/handover/new", data={"staff_id": leaver.id})
    assert response.status_code == 403
    session.refresh(leaver)
    assert leaver.status == "active"


def test_a_salesperson_cannot_open_the_handover_pages(session, org, leaver):
    sales = make_staff(session, department=org["team_a"])
    client, _ = _client(session, sales)
    assert client.get("/console/handover").status_code == 403
    assert client.get(f"/console/handover/new?staff_id={leaver.id}").status_code == 403


def test_a_manager_of_another_branch_cannot_hand_over_this_person(session, org, leaver):
    outsider = make_staff(session, role="manager", department=org["team_b"])
    client, csrf = _client(session, outsider)
    assert _open(client, csrf, leaver.id).status_code == 404
    session.refresh(leaver)
    assert leaver.status == "active"


def test_executing_to_one_successor_shows_per_customer_results(session, org, manager, leaver):
    c1 = make_customer(session, owner=leaver, name="企微客户", wecom_external_userid="wmC1")
    c2 = make_customer(session, owner=leaver, name="普通客户")
    heir = make_staff(session, department=org["team_a"], display_name="接班小李", wecom_userid="LiWx")
    client, csrf = _client(session, manager)
    _open(client, csrf, leaver.id)
    case = session.scalar(select(HandoverCase))
    response = client.post(f"/console/handover/{case.id}/execute",
                           data={"csrf_token": csrf, "mode": "successor", "to_staff_id": heir.id})
    assert response.status_code == 303
    session.expire_all()
    assert {session.get(Customer, c.id).owner_id for c in (c1, c2)} == {heir.id}
    page = client.get(f"/console/handover/{case.id}").text
    assert "已转移" in page and "接班小李" in page and "待提交企业微信" in page and "非企业微信客户" in page


def test_a_refused_execution_shows_the_reason_and_changes_nothing(session, org, manager, leaver):
    c = make_customer(session, owner=leaver)
    gone = make_staff(session, department=org["team_a"], display_name="也走了")
    client, csrf = _client(session, manager)
    _open(client, csrf, leaver.id)
    gone_row = session.get(Staff, gone.id)
    gone_row.status = "departed"
    session.flush()
    case = session.scalar(select(HandoverCase))
    response = client.post(f"/console/handover/{case.id}/execute",
                           data={"csrf_token": csrf, "mode": "successor", "to_staff_id": gone.id})
    assert response.status_code == 409 and "已离职" in response.text
    session.expire_all()
    assert session.get(Customer, c.id).owner_id == leaver.id


def test_per_customer_override_from_the_form(session, org, manager, leaver):
    c1 = make_customer(session, owner=leaver)
    c2 = make_customer(session, owner=leaver)
    heir = make_staff(session, department=org["team_a"])
    other = make_staff(session, department=org["team_b"])
    client, csrf = _client(session, manager)
    _open(client, csrf, leaver.id)
    case = session.scalar(select(HandoverCase))
    client.post(f"/console/handover/{case.id}/execute", data={
        "csrf_token": csrf, "mode": "successor", "to_staff_id": heir.id, f"override_{c2.id}": f"staff:{other.id}"})
    session.expire_all()
    assert (session.get(Customer, c1.id).owner_id, session.get(Customer, c2.id).owner_id) == (heir.id, other.id)


def test_the_cases_list_is_scoped(session, org, manager, leaver):
    other_leaver = make_staff(session, department=org["company"], display_name="总部离职")
    admin = make_staff(session, role="admin", department=org["company"])
    client, csrf = _client(session, admin)
    _open(client, csrf, leaver.id)
    _open(client, csrf, other_leaver.id)
    mine, _ = _client(session, manager)
    page = mine.get("/console/handover").text
    assert "离职小王" in page and "总部离职" not in page


def test_in_service_case_from_the_console(session, org, manager):
    holder = make_staff(session, department=org["team_a"])
    c1 = make_customer(session, owner=holder)
    make_customer(session, owner=holder)
    client, csrf = _client(session, manager)
    response = client.post("/console/handover/new", data={
        "csrf_token": csrf, "staff_id": holder.id, "kind": "in_service", "customer_id": [c1.id]})
    assert response.status_code == 303
    case = session.scalar(select(HandoverCase))
    assert case.kind == "in_service"
    session.refresh(holder)
    assert holder.status == "active"


# --- JSON API ------------------------------------------------------------------------------------------

def _token(session, staff):
    token, _ = auth_service.issue_api_token(session, staff.id, "test")
    return bearer(token)


def test_api_opens_executes_and_lists_items(session, org, manager, leaver):
    make_customer(session, owner=leaver, wecom_external_userid="wmApi", phone="13900002222")
    heir = make_staff(session, department=org["team_a"], wecom_userid="HeirApi")
    client, headers = console_client(), _token(session, manager)
    opened = client.post("/api/v1/handover/cases/departure", json={"staff_id": leaver.id}, headers=headers)
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    done = client.post(f"/api/v1/handover/cases/{case_id}/execute",
                       json={"mode": "successor", "to_staff_id": heir.id}, headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["moved"] == 1 and done.json()["transfers_requested"] == 1
    items = client.get(f"/api/v1/handover/cases/{case_id}/items", headers=headers).json()["items"]
    assert items[0]["phone_masked"] == "139****2222" and items[0]["transfer_status"] == "requested"
    assert session.scalar(select(WeComTransfer.takeover_userid)) == "HeirApi"


def test_api_refusal_is_a_409_with_a_stable_code(session, org, manager, leaver):
    make_customer(session, owner=leaver)
    heir = make_staff(session, department=org["team_a"], capacity=0)
    client, headers = console_client(), _token(session, manager)
    case_id = client.post("/api/v1/handover/cases/departure", json={"staff_id": leaver.id},
                          headers=headers).json()["id"]
    refused = client.post(f"/api/v1/handover/cases/{case_id}/execute",
                          json={"mode": "successor", "to_staff_id": heir.id}, headers=headers)
    assert refused.status_code == 409 and refused.json()["code"] == "handover_refused"


def test_api_handover_is_documented_in_openapi(session):
    paths = console_client().get("/api/openapi.json").json()["paths"]
    assert "/api/v1/handover/cases/{case_id}/execute" in paths
    assert "/api/v1/handover/cases/departure" in paths


def test_in_service_customers_over_the_wecom_limit_are_flagged_before_execution(session, org, manager):
    from datetime import timedelta

    from core import clock
    from crm.models import WeComTransfer

    holder = make_staff(session, department=org["team_a"], wecom_userid="HolderWx")
    c = make_customer(session, owner=holder, wecom_external_userid="wmTwice")
    now = clock.now()
    for days in (10, 20):
        session.add(WeComTransfer(customer_id=c.id, external_userid="wmTwice", handover_userid="X",
                                  takeover_userid="HolderWx", kind="in_service", status="taken_over",
                                  requested_at=now - timedelta(days=days), updated_at=now))
    session.flush()
    client, csrf = _client(session, manager)
    client.post("/console/handover/new", data={
        "csrf_token": csrf, "staff_id": holder.id, "kind": "in_service", "customer_id": [c.id]})
    case = session.scalar(select(HandoverCase))
    assert "90 天内已在职转接 2 次" in client.get(f"/console/handover/{case.id}").text
