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


def test_a_served_process_is_warmed_up_before_its_first_request():
    """``scrm serve`` (create_served_app): mappers configured, a database connection opened and the console's
    templates compiled in the startup, not on the first requests under load."""
    from admin.deps import templates

    templates.env.cache.clear()
    with TestClient(create_app(start_tasks=False)):
        assert not any(key[1] == "customers/detail.html" for key in templates.env.cache)  # tests start cold
    with TestClient(create_app(start_tasks=False, warm=True)):
        compiled = {key[1] for key in templates.env.cache}
    assert {"customers/detail.html", "customers/list.html", "dashboard.html", "base.html"} <= compiled
