"""The one data-scope helper: own, department subtree, all."""

import pytest
from sqlalchemy import select

from crm import scope
from crm.exceptions import OutOfScope
from crm.models import Staff
from tests.factories import make_org, make_staff


@pytest.fixture
def org(session):
    o = make_org(session)
    people = {
        "admin": make_staff(session, role="admin", department=o["company"]),
        "branch_manager": make_staff(session, role="manager", department=o["branch"]),
        "lead_a": make_staff(session, role="supervisor", department=o["team_a"]),
        "sales_a": make_staff(session, role="sales", department=o["team_a"]),
        "sales_b": make_staff(session, role="sales", department=o["team_b"]),
    }
    return o, people


def visible(session, viewer_staff):
    viewer = scope.Viewer.of(viewer_staff)
    return set(session.scalars(select(Staff.id).where(scope.owner_filter(viewer, Staff.id))))


def test_sales_see_only_themselves(session, org):
    _, p = org
    assert visible(session, p["sales_a"]) == {p["sales_a"].id}


def test_supervisor_sees_their_team_only(session, org):
    _, p = org
    assert visible(session, p["lead_a"]) == {p["lead_a"].id, p["sales_a"].id}


def test_branch_manager_sees_the_branch_subtree(session, org):
    _, p = org
    assert visible(session, p["branch_manager"]) == {p["branch_manager"].id, p["lead_a"].id, p["sales_a"].id,
                                                     p["sales_b"].id}


def test_admin_sees_all(session, org):
    _, p = org
    assert visible(session, p["admin"]) == {s.id for s in p.values()}


def test_ensure_visible_refuses_outside_scope(session, org):
    _, p = org
    viewer = scope.Viewer.of(p["sales_a"])
    scope.ensure_visible(session, viewer, p["sales_a"].id)
    with pytest.raises(OutOfScope):
        scope.ensure_visible(session, viewer, p["sales_b"].id)
    with pytest.raises(OutOfScope):
        scope.ensure_visible(session, scope.Viewer.of(p["lead_a"]), p["sales_b"].id)


def test_unowned_rows_only_when_asked(session, org):
    _, p = org
    viewer = scope.Viewer.of(p["sales_a"])
    assert not scope.can_see_owner(session, viewer, None)
    assert scope.can_see_owner(session, viewer, None, include_unowned=True)


def test_department_path_prefix_does_not_match_siblings_with_longer_ids(session):
    # "/1/2/" must not match "/1/23/": paths end with a slash for this reason.
    o = make_org(session)
    assert not o["team_b"].path.startswith(o["team_a"].path)
