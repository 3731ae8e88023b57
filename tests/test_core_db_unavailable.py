"""A database that does not answer gives the caller a clear 503 at once (with Retry-After), not a hang or a 500."""

from __future__ import annotations

import socket
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import sessionmaker

from core import db
from core.web import create_app


@pytest.fixture
def unreachable_database(session):
    """Every unit of work goes to a PostgreSQL port where nothing listens (a stopped server)."""
    with socket.socket() as s:  # a port that was free a moment ago: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = db.make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/scrm")
    db.set_session_factory(sessionmaker(bind=engine, expire_on_commit=False))
    yield
    engine.dispose()


def test_api_answers_503_when_the_database_is_down(unreachable_database):
    client = TestClient(create_app(start_tasks=False))
    started = time.monotonic()
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer whatever"})
    assert time.monotonic() - started < 10
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["code"] == "service_unavailable" and "暂时不可用" in response.json()["message"]


def test_console_page_answers_503_in_chinese_when_the_database_is_down(unreachable_database):
    client = TestClient(create_app(start_tasks=False), follow_redirects=False)
    client.cookies.set("scrm_session", "some-session")
    response = client.get("/console/customers")
    assert response.status_code == 503 and "服务暂时不可用" in response.text


def test_readyz_says_the_database_is_not_ready(unreachable_database):
    client = TestClient(create_app(start_tasks=False))
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["database"].startswith("error")
    assert client.get("/healthz").status_code == 200
