"""Every response carries its request id and the security headers (plain ASGI middleware)."""

from fastapi.testclient import TestClient

from core.web import create_app


def test_a_request_id_is_made_up_when_the_client_sends_none():
    response = TestClient(create_app(start_tasks=False)).get("/healthz")
    assert response.status_code == 200
    assert len(response.headers["x-request-id"]) == 16
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


def test_the_clients_request_id_is_echoed_once():
    response = TestClient(create_app(start_tasks=False)).get("/healthz", headers={"X-Request-ID": "abc123"})
    assert response.headers.get_list("x-request-id") == ["abc123"]
