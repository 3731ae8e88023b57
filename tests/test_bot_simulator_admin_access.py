"""The simulator's ``_admin`` controls answer loopback clients and admin/manager console sessions only."""

from __future__ import annotations

import httpx

from tests.factories import make_staff
from tests.test_admin_support import console_client, log_in

ADMIN_PATHS = ("/_wecom_sim/_admin/state", "/_wecom_sim/_admin/requests", "/_wecom_sim/_admin/clock")


def test_a_remote_client_without_a_session_is_refused_state_requests_and_controls(session):
    client = console_client()  # TestClient's peer is "testclient", not loopback
    for path in ADMIN_PATHS:
        assert client.get(path).status_code == 403, path
    assert client.post("/_wecom_sim/_admin/reset").status_code == 403


def test_a_salesperson_session_is_refused(session):
    client = console_client()
    log_in(client, session, make_staff(session, role="sales"))
    assert client.get("/_wecom_sim/_admin/state").status_code == 403


def test_an_admin_or_manager_session_is_let_in(session):
    for role in ("admin", "manager"):
        client = console_client()
        log_in(client, session, make_staff(session, role=role))
        response = client.get("/_wecom_sim/_admin/state")
        assert response.status_code == 200 and "contacts" in response.json()


def test_a_loopback_client_over_real_http_is_let_in_but_not_through_a_proxy(wecom_server):
    url = wecom_server.sim_url + "/_admin/state"
    assert httpx.get(url).status_code == 200
    assert httpx.get(url, headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    assert httpx.get(url, headers={"X-Real-IP": "203.0.113.9"}).status_code == 403
