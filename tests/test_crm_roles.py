"""Custom roles (crm.roles, crm.permissions): built from named permissions and a data scope, checked by the same
role gates as the built-in roles; presets; in-use roles not deletable; audit-logged; staff pickers by permission."""

from __future__ import annotations

import pickle

import pytest
from sqlalchemy import select

from admin import nav
from core.errors import PermissionDenied
from crm import org_service, permissions, roles
from crm.models import CustomRole, Staff
from crm.scope import Viewer
from postloan import actions
from tests.factories import make_org, make_staff
from tests.test_admin_support import audit_count


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def admin(session, org):
    return make_staff(session, role="admin", department=org["company"], display_name="管理员")


def _role(session, admin, name="电销专员", perms=("customers.import", "customers.own"), scope="department"):
    return roles.create_role(session, Viewer.of(admin), roles.RoleInput(name, list(perms), scope, "电话销售"))


def test_a_custom_role_holds_exactly_the_permissions_it_lists(session, org, admin):
    role = _role(session, admin)
    holder = make_staff(session, role=role.key, department=org["team_a"], display_name="电销甲")
    viewer = Viewer.of(holder)
    assert holder.role == role.key == f"custom_{role.id}"
    assert viewer.role in nav.IMPORTERS and viewer.role in org_service.CUSTOMER_OWNER_ROLES
    assert viewer.role not in nav.STAFF_MANAGERS and viewer.role not in nav.OUTBOX_ADMINS
    assert viewer.role in nav.ALL_ROLES  # the basic pages (home, my work) are everyone's
    assert viewer.role not in {"admin", "manager"}  # a plain set (an unnamed gate) never admits a custom role


def test_the_holder_gets_the_roles_data_scope_and_a_new_scope_reaches_every_holder(session, org, admin):
    role = _role(session, admin, scope="own")
    holder = make_staff(session, role=role.key, department=org["team_a"], data_scope="all")
    assert holder.data_scope == "own"  # the role's scope, not the one on the form
    roles.update_role(session, Viewer.of(admin), role.id,
                      roles.RoleInput(role.name, list(role.permissions), "department"))
    session.refresh(holder)
    assert holder.data_scope == "department" and Viewer.of(holder).scope == "department"


def test_menu_shows_only_what_the_custom_role_may_open(session, org, admin):
    role = _role(session, admin)
    viewer = Viewer.of(make_staff(session, role=role.key, department=org["team_a"]))
    keys = {item.key for item in nav.nav_for(viewer.role)}
    assert {"home", "imports", "work"} <= keys
    assert not keys & {"staff", "audit", "outbox", "roles", "lending_workflow", "payments"}


def test_a_union_of_permissions_admits_a_custom_role_holding_either(session, org, admin):
    role = _role(session, admin, perms=("collections.work",))
    viewer = Viewer.of(make_staff(session, role=role.key, department=org["company"]))
    assert viewer.role in nav.COLLECTIONS_STAFF and viewer.role in actions.COLLECTORS
    assert viewer.role not in actions.MANAGERS
    assert pickle.loads(pickle.dumps(nav.COLLECTIONS_STAFF)).__contains__(viewer.role)


def test_validation_refuses_bad_input_and_changes_nothing(session, admin):
    v = Viewer.of(admin)
    cases = [roles.RoleInput("", ["customers.import"]), roles.RoleInput("销售", ["customers.import"]),
             roles.RoleInput("无权限", []), roles.RoleInput("乱写", ["nope.nothing"]),
             roles.RoleInput("范围", ["customers.import"], "galaxy")]
    for data in cases:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - each a different AppError
            with session.begin_nested():
                roles.create_role(session, v, data)
        assert getattr(caught.value, "status", 500) in (409, 422), data
    assert session.scalar(select(CustomRole.id)) is None and audit_count(session, "role.create") == 0


def test_only_role_editors_manage_roles(session, org, admin):
    manager = make_staff(session, role="manager", department=org["branch"])
    with pytest.raises(PermissionDenied):
        _role(session, manager)


def test_a_role_in_use_cannot_be_deleted_and_an_unused_one_can(session, org, admin):
    role = _role(session, admin)
    holder = make_staff(session, role=role.key, department=org["team_a"])
    with pytest.raises(roles.RoleInUse):
        roles.delete_role(session, Viewer.of(admin), role.id)
    holder.role = "sales"
    session.flush()
    roles.delete_role(session, Viewer.of(admin), role.id)
    assert session.get(CustomRole, role.id) is None
    assert audit_count(session, "role.create") == 1 and audit_count(session, "role.delete") == 1


def test_changes_are_audit_logged_with_labels(session, admin):
    role = _role(session, admin)
    roles.update_role(session, Viewer.of(admin), role.id,
                      roles.RoleInput("电销专员", ["customers.import"], "department", "电话销售"))
    assert audit_count(session, "role.update") == 1
    from core.audit import AuditLog

    entry = session.scalar(select(AuditLog).where(AuditLog.action == "role.update"))
    assert entry.before == {"permissions": "批量导入、接待客户"} and entry.after == {"permissions": "批量导入"}


def test_presets_are_the_builtin_roles_with_their_permissions(session):
    presets = {p.key: p for p in roles.presets()}
    assert set(presets) == permissions.BUILTIN_ROLES
    assert "staff.manage" in {p.key for p in presets["manager"].permissions}
    assert "staff.manage" not in {p.key for p in presets["sales"].permissions}
    assert all(p.label and p.description for p in permissions.catalogue())


def test_nobody_grants_a_role_with_permissions_they_lack(session, org, admin):
    role = _role(session, admin, perms=("outbox.manage",))
    manager = make_staff(session, role="manager", department=org["branch"], data_scope="department")
    with pytest.raises(PermissionDenied):
        make_staff_as = org_service.StaffInput(username="x-outbox", display_name="任务员", role=role.key,
                                               department_id=org["team_a"].id, password=None)
        org_service.create_staff(session, make_staff_as, Viewer.of(manager))


def test_owner_picker_offers_salespeople_and_custom_roles_that_take_customers(session, org, admin):
    taker = _role(session, admin, name="电销", perms=("customers.own",))
    other = _role(session, admin, name="质检", perms=("audit.read",))
    sales = make_staff(session, role="sales", department=org["team_a"], display_name="销售A")
    phone = make_staff(session, role=taker.key, department=org["team_a"], display_name="电销B")
    make_staff(session, role=other.key, department=org["team_a"], display_name="质检C")
    make_staff(session, role="risk", department=org["company"], display_name="风控D")
    names = {s.display_name for s in org_service.owner_choices(session)}
    assert {sales.display_name, phone.display_name} <= names and not names & {"质检C", "风控D", "管理员"}


def test_collector_picker_and_assignment_accept_custom_collectors_only(session, org, admin):
    role = _role(session, admin, name="外包催收", perms=("collections.work",))
    collector = make_staff(session, role=role.key, department=org["company"])
    sales = make_staff(session, role="sales", department=org["team_a"])
    holders = permissions.holder_roles(session, actions.COLLECTORS)
    assert role.key in holders and "collector" in holders and "sales" not in holders
    assert permissions.staff_holds(session, collector.role, actions.COLLECTORS)
    assert not permissions.staff_holds(session, sales.role, actions.COLLECTORS)
    picked = set(session.scalars(select(Staff.id).where(Staff.role.in_(holders))))
    assert collector.id in picked and sales.id not in picked


def test_a_custom_role_holder_still_gets_the_staff_form_checks(session, org, admin):
    role = _role(session, admin)
    with pytest.raises(Exception, match="客户容量"):
        org_service.create_staff(session, org_service.StaffInput(
            username="cap-x", display_name="容量", role=role.key, department_id=org["team_a"].id, capacity=-1))
