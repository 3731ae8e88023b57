"""Security headers on every response, the opt-out for framed pages, and the API docs served offline."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from core import web
from core.settings import reset_settings_cache
from tests.factories import make_org, make_staff
from tests.test_admin_support import console_client, log_in


def _csp(response) -> str:
    return response.headers.get("content-security-policy", "")


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/customers", "/mp/products", "/console/login",
                                  "/api/docs", "/api/openapi.json", "/mp/docs", "/nowhere"])
def test_every_response_refuses_to_be_framed(session, path):
    response = console_client().get(path)
    assert response.headers["x-frame-options"] == "DENY", path
    assert "frame-ancestors 'none'" in _csp(response), path
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/api/v1/customers", "/api/v1/staff", "/mp/me", "/mp/products", "/api/openapi.json"])
def test_api_and_mini_program_json_is_never_cached(session, path):
    response = console_client().get(path)
    assert response.headers["cache-control"] == "no-store", path


def test_a_console_page_keeps_its_own_policy_and_gains_nothing_twice(session):
    client = console_client()
    log_in(client, session, make_staff(session, department=make_org(session)["company"]))
    response = client.get("/console/")
    assert "default-src 'self'" in _csp(response) and _csp(response).count("frame-ancestors") == 1
    assert response.headers.get_list("x-frame-options") == ["DENY"]


def test_a_route_that_opts_in_to_framing_is_framed_only_by_whom_it_names(session):
    from core.web import create_app

    app = create_app(start_tasks=False)

    @app.get("/test-sidebar/page")
    def page() -> dict[str, str]:
        return {"ok": "framed"}

    web.allow_framing("/test-sidebar", "https://*.work.weixin.qq.com")
    try:
        response = TestClient(app).get("/test-sidebar/page")
        assert "x-frame-options" not in response.headers
        assert _csp(response) == "frame-ancestors https://*.work.weixin.qq.com"
        assert TestClient(app).get("/healthz").headers["x-frame-options"] == "DENY"  # nothing else moved
    finally:
        web._framing.pop("/test-sidebar")


def test_allow_framing_refuses_nonsense():
    for prefix, ancestors in (("sidebar", "https://x"), ("/sidebar", ""), ("/sidebar", "'none'")):
        with pytest.raises(ValueError):
            web.allow_framing(prefix, ancestors)


# --- the docs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("docs", "openapi"), [("/api/docs", "/api/openapi.json"), ("/mp/docs", "/mp/openapi.json")])
def test_swagger_ui_comes_from_our_own_static_files(session, docs, openapi):
    client = console_client()
    html = client.get(docs).text
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/static/swagger-ui/") for s in sources), sources
    assert "cdn" not in html and f"'{openapi}'" in html and '"validatorUrl": null' in html
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert client.get(openapi).json()["openapi"].startswith("3.")


def test_redoc_is_off(session):
    client = console_client()
    assert client.get("/redoc").status_code == 404 and client.get("/mp/redoc").status_code == 404


@pytest.fixture
def production(monkeypatch):
    monkeypatch.setenv("SCRM_ENV", "production")
    monkeypatch.setenv("SCRM_ALLOW_SIMULATORS", "true")
    reset_settings_cache()
    yield
    monkeypatch.undo()
    reset_settings_cache()


@pytest.mark.parametrize("path", ["/api/docs", "/api/openapi.json", "/mp/docs", "/mp/openapi.json"])
def test_in_production_the_docs_are_for_logged_in_staff_only(session, production, path):
    assert console_client().get(path).status_code == 404
    client = console_client()
    log_in(client, session, make_staff(session, department=make_org(session)["company"]))
    assert client.get(path).status_code == 200
