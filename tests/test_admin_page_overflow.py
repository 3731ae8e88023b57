"""An absurd page number is clamped (console) or a 422 (API), never a 500 (OverflowError)."""

from __future__ import annotations

import pytest

from admin.pagination import MAX_PAGE, page_number
from crm import auth_service
from tests.factories import make_org, make_staff
from tests.test_admin_support import bearer, console_client, log_in

BIG = "99999999999999999999999"


@pytest.fixture
def admin_client(session):
    org = make_org(session)
    admin = make_staff(session, role="admin", department=org["company"])
    client = console_client()
    log_in(client, session, admin)
    token, _ = auth_service.issue_api_token(session, admin.id, "t")
    return client, bearer(token)


@pytest.mark.parametrize("path", ["/console/customers", "/console/staff", "/console/audit", "/console/handover",
                                  "/console/lending/loans", "/console/pool", "/console/lending/bills"])
def test_console_lists_clamp_a_huge_page(admin_client, path):
    client, _ = admin_client
    response = client.get(f"{path}?page={BIG}")
    assert response.status_code == 200, response.text[:300]


@pytest.mark.parametrize("path", ["/api/v1/customers", "/api/v1/staff", "/api/v1/handover/cases"])
def test_api_lists_refuse_a_huge_page_with_422(admin_client, path):
    client, headers = admin_client
    response = client.get(f"{path}?page={BIG}", headers=headers)
    assert response.status_code == 422 and "页码" in response.text
    assert client.get(f"{path}?page={MAX_PAGE}", headers=headers).status_code == 200


def test_api_loan_list_refuses_a_huge_offset(admin_client):
    client, headers = admin_client
    assert client.get(f"/api/v1/lending/loans?offset={BIG}", headers=headers).status_code == 422


def test_a_huge_id_in_a_path_is_a_422_not_a_500(admin_client):
    client, headers = admin_client
    assert client.get(f"/api/v1/customers/{BIG}", headers=headers).status_code in (404, 422)
    assert client.get(f"/console/staff/{BIG}").status_code in (404, 422)


def test_page_number_clamps_and_forgives():
    assert (page_number(BIG), page_number("-3"), page_number("abc"), page_number(None), page_number(" 7 ")) == \
        (MAX_PAGE, 1, 1, 1, 7)
