from fastapi.testclient import TestClient

from core.web import create_app
from tests.factories import make_org, make_staff


def test_healthz_and_readyz_answer(session):
    client = TestClient(create_app(start_tasks=False))
    assert client.get("/healthz").text == "ok"
    body = client.get("/readyz").json()
    assert body["ready"] is True and body["checks"]["database"] == "ok"


def test_staff_in_an_org_tree(session):
    org = make_org(session)
    staff = make_staff(session, department=org["team_a"])
    assert staff.department.path.startswith(org["company"].path)
    assert org["team_a"].path.count("/") == 5
