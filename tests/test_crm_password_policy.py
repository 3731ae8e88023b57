"""The staff password policy (core.password_policy) and what a password change ends."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.password_policy import problem
from crm import auth_service, org_service
from crm.exceptions import WeakPassword
from crm.models import ApiToken, StaffSession
from tests.factories import PASSWORD, make_org, make_staff
from tests.test_admin_support import console_client, log_in

COOKIE_CHECK = "/console/"


@pytest.mark.parametrize("password", [
    "Short-1x",  # 8 characters
    "woaini1314", "Woaini1314!", "5201314520", "1qaz2wsx3edc", "qwertyuiop", "Password123", "Passw0rd-2024",
    "zhangwei1990", "iloveyou1314", "aaaaaaaaaa1",
])
def test_short_common_and_pinyin_passwords_are_refused(password):
    assert problem(password, "someone") is not None


def test_a_password_containing_the_username_is_refused():
    assert problem("Zhangsan-Secret-7", "zhangsan") == "密码不能包含登录名"
    assert problem("Zhangsan-Secret-7", "lisi") is None


@pytest.mark.parametrize("password", ["Tiger-Lily-417", "Tr0ub4dor&3x", "mingtian-qu-hangzhou-88"])
def test_long_uncommon_passwords_pass(password):
    assert problem(password, "someone") is None


def test_the_service_refuses_a_weak_password_with_the_rule_it_breaks(session):
    dept = make_org(session)["team_a"]
    with pytest.raises(WeakPassword) as refused:
        make_staff(session, department=dept, username="wangfang", password="Wangfang-2025x")
    assert "登录名" in refused.value.message


def test_every_demo_login_satisfies_the_policy():
    from crm.demo import DEMO_STAFF

    assert [(row[0], problem(row[4], row[0])) for row in DEMO_STAFF] == [(row[0], None) for row in DEMO_STAFF]


# --- a reset or change ends the other sessions ---------------------------------------------------

def _live_sessions(session, staff_id: int) -> int:
    session.expire_all()
    return len([s for s in session.scalars(select(StaffSession).where(StaffSession.staff_id == staff_id))
                if s.revoked_at is None])


def test_an_admin_reset_ends_every_session_of_the_person_and_keeps_tokens_unless_asked(session):
    org = make_org(session)
    admin = make_staff(session, role="admin", department=org["company"])
    target = make_staff(session, department=org["team_a"], username="resetme")
    victim_browser = console_client()
    log_in(victim_browser, session, target)
    auth_service.issue_api_token(session, target.id, "报表同步")
    assert victim_browser.get(COOKIE_CHECK).status_code == 200
    admin_client = console_client()
    csrf = log_in(admin_client, session, admin)
    form = {"csrf_token": csrf, "username": "resetme", "display_name": "重置", "role": "sales",
            "department_id": str(org["team_a"].id), "capacity": "10", "level": "1", "password": "Fresh-Start-482"}
    response = admin_client.post(f"/console/staff/{target.id}/edit", data=form)
    assert response.status_code == 303 and response.headers["location"].endswith("done=password")
    assert victim_browser.get(COOKIE_CHECK).status_code == 303  # sent to the login page
    assert _live_sessions(session, target.id) == 0
    assert session.scalar(select(ApiToken).where(ApiToken.staff_id == target.id)).revoked_at is None
    # Asked to, the next reset revokes the tokens as well.
    response = admin_client.post(f"/console/staff/{target.id}/edit",
                                 data={**form, "password": "Second-Start-913", "revoke_tokens": "1"})
    assert response.headers["location"].endswith("done=password_tokens")
    session.expire_all()
    assert session.scalar(select(ApiToken).where(ApiToken.staff_id == target.id)).revoked_at is not None
    assert admin_client.get(f"/console/staff/{target.id}?done=password_tokens").text.count("API 令牌已全部吊销") == 1


def test_an_edit_without_a_password_ends_no_session(session):
    org = make_org(session)
    admin = make_staff(session, role="admin", department=org["company"])
    target = make_staff(session, department=org["team_a"], username="keepsession")
    log_in(console_client(), session, target)
    admin_client = console_client()
    csrf = log_in(admin_client, session, admin)
    admin_client.post(f"/console/staff/{target.id}/edit", data={
        "csrf_token": csrf, "username": "keepsession", "display_name": "改名", "role": "sales",
        "department_id": str(org["team_a"].id), "capacity": "10", "level": "1", "password": ""})
    assert _live_sessions(session, target.id) == 1


def test_changing_my_own_password_ends_my_other_sessions_but_not_this_one(session):
    me = make_staff(session, department=make_org(session)["team_a"], username="changer")
    other_device = console_client()
    log_in(other_device, session, me)
    auth_service.issue_api_token(session, me.id, "脚本")
    client = console_client()
    csrf = log_in(client, session, me)
    assert "修改密码" in client.get("/console/password").text
    response = client.post("/console/password", data={
        "csrf_token": csrf, "current_password": PASSWORD, "password": "Brand-New-Pass-61",
        "password_again": "Brand-New-Pass-61", "revoke_tokens": "1"})
    assert response.status_code == 303, response.text
    assert "API 令牌已全部吊销" in client.get(response.headers["location"]).text  # this session lives on
    assert other_device.get(COOKIE_CHECK).status_code == 303
    assert _live_sessions(session, me.id) == 1
    assert session.scalar(select(ApiToken).where(ApiToken.staff_id == me.id)).revoked_at is not None
    assert auth_service.authenticate(session, "changer", "Brand-New-Pass-61").staff is not None


@pytest.mark.parametrize(("fields", "message"), [
    ({"current_password": "not-my-password-1"}, "当前密码不正确"),
    ({"password": "woaini1314", "password_again": "woaini1314"}, "太常见"),
    ({"password_again": "Something-Else-99"}, "两次输入的新密码不一致"),
])
def test_a_refused_change_says_why_and_changes_nothing(session, fields, message):
    me = make_staff(session, department=make_org(session)["team_a"], username="careful")
    other_device = console_client()
    log_in(other_device, session, me)
    client = console_client()
    csrf = log_in(client, session, me)
    data = {"csrf_token": csrf, "current_password": PASSWORD, "password": "Brand-New-Pass-61",
            "password_again": "Brand-New-Pass-61", **fields}
    response = client.post("/console/password", data=data)
    assert response.status_code == 422 and message in response.text
    assert other_device.get(COOKIE_CHECK).status_code == 200
    assert auth_service.authenticate(session, "careful", PASSWORD).staff is not None


def test_the_service_keeps_no_session_when_none_is_named(session):
    me = make_staff(session, department=make_org(session)["team_a"])
    for _ in range(2):
        auth_service.open_session(session, me)
    ended = org_service.end_sessions_after_password_change(session, me.id)
    assert ended.sessions == 2 and _live_sessions(session, me.id) == 0
