"""The department tree page: scoped reading, admin-only changes."""

from __future__ import annotations

from sqlalchemy import select

from crm.models import Department
from tests.factories import make_org, make_staff
from tests.test_admin_support import console_client, log_in


def test_supervisor_sees_only_their_subtree(session):
    org = make_org(session)
    supervisor = make_staff(session, role="supervisor", department=org["team_a"])
    client = console_client()
    log_in(client, session, supervisor)
    page = client.get("/console/departments").text
    assert "一组" in page and "二组" not in page and "总公司" not in page


def test_admin_creates_a_child_department(session):
    org = make_org(session)
    admin = make_staff(session, role="admin", department=org["company"])
    client = console_client()
    csrf = log_in(client, session, admin)
    response = client.post("/console/departments", data={"csrf_token": csrf, "parent_id": str(org["branch"].id),
                                                         "name": "三组", "kind": "team"})
    assert response.status_code == 303
    created = session.scalar(select(Department).where(Department.name == "三组"))
    assert created.parent_id == org["branch"].id


def test_creating_a_department_of_the_wrong_level_shows_the_error(session):
    org = make_org(session)
    admin = make_staff(session, role="admin", department=org["company"])
    client = console_client()
    csrf = log_in(client, session, admin)
    response = client.post("/console/departments", data={"csrf_token": csrf, "parent_id": str(org["team_a"].id),
                                                         "name": "错层", "kind": "center"})
    assert response.status_code == 422 and "下级部门的层级必须低于上级部门" in response.text
    assert session.scalar(select(Department).where(Department.name == "错层")) is None


def test_admin_renames_a_department(session):
    org = make_org(session)
    admin = make_staff(session, role="admin", department=org["company"])
    client = console_client()
    csrf = log_in(client, session, admin)
    client.post(f"/console/departments/{org['team_a'].id}/rename", data={"csrf_token": csrf, "name": "精英组"})
    session.expire_all()
    assert session.get(Department, org["team_a"].id).name == "精英组"


def test_manager_may_not_change_the_tree(session):
    org = make_org(session)
    manager = make_staff(session, role="manager", department=org["branch"])
    client = console_client()
    csrf = log_in(client, session, manager)
    response = client.post(f"/console/departments/{org['team_a'].id}/rename",
                           data={"csrf_token": csrf, "name": "改不了"})
    assert response.status_code == 403
    session.expire_all()
    assert session.get(Department, org["team_a"].id).name == "一组"


def test_child_form_offers_only_lower_levels(session):
    org = make_org(session)
    admin = make_staff(session, role="admin", department=org["company"])
    client = console_client()
    log_in(client, session, admin)
    page = client.get("/console/departments").text
    branch_form = page.split(f'name="parent_id" value="{org["branch"].id}"')[1].split("</form>")[0]
    assert '<option value="team">' in branch_form and '<option value="center">' not in branch_form
    assert f'name="parent_id" value="{org["team_a"].id}"' not in page  # a team has no children
