"""crm.demo: the demo company and logins behind `scrm seed-demo` (used to try the console)."""

from __future__ import annotations

from sqlalchemy import func, select

from crm import demo
from crm.models import Staff
from tests.test_admin_support import console_client, form_login


def test_seed_creates_the_company_tree_and_one_login_per_role(session):
    lines = demo.seed(session)
    assert any("admin / Guanli-Demo-2026" in line for line in lines)
    staff = {s.username: s for s in session.scalars(select(Staff))}
    assert set(staff) == {"admin", "manager", "supervisor", "sales1", "sales2", "risk", "finance", "collector"}
    assert staff["supervisor"].department.name == "销售一组" and staff["supervisor"].data_scope == "department"
    assert staff["sales2"].department.name == "销售二组"
    assert staff["sales2"].department.parent.name == "上海分部"
    assert staff["admin"].mobile_masked == "138****8001" and staff["admin"].wecom_userid


def test_seed_runs_once(session):
    demo.seed(session)
    assert demo.seed(session) == []
    assert session.scalar(select(func.count()).select_from(Staff)) == 8


def test_demo_admin_logs_in_to_the_console(session):
    demo.seed(session)
    client = console_client()
    assert form_login(client, "admin", "Guanli-Demo-2026").status_code == 303
    assert "系统管理员" in client.get("/console/").text
