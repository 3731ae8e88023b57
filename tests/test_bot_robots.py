"""Team group robots (群机器人): sealed webhook keys per department, announcements through the
gateway's webhook endpoint, and the management page at /wecom/robots."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from bot import robots
from bot.models_chat import WecomRobot
from core import pii
from core.audit import AuditLog
from core.settings import get_settings
from crm import auth_service
from crm.scope import Viewer
from tests.factories import make_department, make_staff

KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
URL = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"
PAGE = "/wecom/robots"


@pytest.fixture
def org(session):
    company = make_department(session, "总公司", "company")
    team_a = make_department(session, "一组", "team", company)
    team_b = make_department(session, "二组", "team", company)
    manager_a = make_staff(session, role="manager", department=team_a, data_scope="department")
    return {"team_a": team_a, "team_b": team_b, "manager_a": Viewer.of(manager_a),
            "sales": Viewer.of(make_staff(session, department=team_a))}


def test_the_webhook_key_is_stored_sealed(session, org):
    robot = robots.add_robot(session, org["manager_a"], name="一组战报群", department_id=org["team_a"].id,
                             webhook=URL)
    assert KEY not in robot.webhook_key_enc
    assert pii.open_sealed(pii.PAYLOAD, robot.webhook_key_enc) == KEY
    assert robot.key_hint == "693a…5aaa"


def test_a_bare_key_is_accepted_and_garbage_refused(session, org):
    assert robots.parse_key(KEY) == KEY
    with pytest.raises(robots.RobotInvalid):
        robots.parse_key("https://example.com/not-a-webhook")


def test_salespeople_cannot_add_robots(session, org):
    with pytest.raises(robots.PermissionDenied):
        robots.add_robot(session, org["sales"], name="群", department_id=org["team_a"].id, webhook=KEY)


def test_a_manager_cannot_add_a_robot_outside_their_departments(session, org):
    with pytest.raises(robots.RobotInvalid, match="数据范围"):
        robots.add_robot(session, org["manager_a"], name="群", department_id=org["team_b"].id, webhook=KEY)


def test_same_name_twice_in_a_department_is_refused(session, org):
    robots.add_robot(session, org["manager_a"], name="群", department_id=org["team_a"].id, webhook=KEY)
    with pytest.raises(robots.RobotNameTaken):
        robots.add_robot(session, org["manager_a"], name="群", department_id=org["team_a"].id, webhook=KEY)


def test_an_announcement_is_posted_through_the_webhook(session, org, wecom_server):
    robot = robots.add_robot(session, org["manager_a"], name="一组战报群", department_id=org["team_a"].id,
                             webhook=URL)
    robots.post_announcement(robot.id, "**今日战报**：放款 3 笔，客户 13912345678 已签约", viewer=org["manager_a"])
    [call] = wecom_server.calls("webhook/send")
    assert call["query"]["key"].startswith(KEY[:6])
    assert call["body"]["msgtype"] == "markdown"
    assert call["body"]["markdown"]["content"] == "**今日战报**：放款 3 笔，客户 139****5678 已签约"
    session.refresh(robot)
    assert robot.last_posted_at is not None
    assert session.scalar(select(AuditLog).where(AuditLog.action == "wecom_robot.post")) is not None


def test_announce_to_department_posts_to_each_enabled_robot(session, org, wecom_server):
    for name in ("群一", "群二"):
        robots.add_robot(session, org["manager_a"], name=name, department_id=org["team_a"].id, webhook=KEY)
    assert robots.announce_to_department(org["team_a"].id, "周会改到周五", msgtype="text") == 2
    assert [c["body"]["text"]["content"] for c in wecom_server.calls("webhook/send")] == ["周会改到周五"] * 2


# --- the page -------------------------------------------------------------------------------------

def login(committed, role: str, department=None) -> tuple[httpx.Client, str, int]:
    with committed() as s:
        dept = department or make_department(s, "总公司", "company")
        staff = make_staff(s, role=role, department=dept, data_scope="all" if role != "sales" else "own")
        token, row = auth_service.open_session(s, staff)
        csrf, dept_id = row.csrf_token, dept.id
        s.commit()
    client = httpx.Client(timeout=20, follow_redirects=False)
    client.cookies.set(get_settings().session_cookie_name, token)
    return client, csrf, dept_id


def test_anonymous_visitors_are_sent_to_the_login_page(committed, wecom_server):
    response = httpx.get(wecom_server.base_url + PAGE)
    assert response.status_code == 303 and response.headers["location"] == "/console/login"


def test_salespeople_may_not_open_the_page(committed, wecom_server):
    client, _, _ = login(committed, "sales")
    assert client.get(wecom_server.base_url + PAGE).status_code == 403


def test_a_form_without_the_csrf_token_is_refused(committed, wecom_server):
    client, _, dept_id = login(committed, "manager")
    response = client.post(wecom_server.base_url + PAGE, data={"name": "群", "department_id": str(dept_id),
                                                               "webhook": KEY, "csrf_token": "forged"})
    assert response.status_code == 403
    with committed() as s:
        assert s.scalars(select(WecomRobot)).all() == []


def test_a_manager_adds_a_robot_and_posts_from_the_page(committed, wecom_server):
    client, csrf, dept_id = login(committed, "manager")
    base = wecom_server.base_url + PAGE
    response = client.post(base, data={"name": "战报群", "department_id": str(dept_id), "webhook": URL,
                                       "csrf_token": csrf})
    assert response.status_code == 303 and "notice=" in response.headers["location"]
    page = client.get(base)
    assert "战报群" in page.text and "693a…5aaa" in page.text and KEY not in page.text
    with committed() as s:
        robot_id = s.scalar(select(WecomRobot.id))
    response = client.post(f"{base}/{robot_id}/post", data={"content": "大家辛苦了", "msgtype": "text",
                                                            "csrf_token": csrf})
    assert response.status_code == 303 and "error=" not in response.headers["location"]
    assert [c["body"]["text"]["content"] for c in wecom_server.calls("webhook/send")] == ["大家辛苦了"]
    client.post(f"{base}/{robot_id}/delete", data={"csrf_token": csrf})
    with committed() as s:
        assert s.scalars(select(WecomRobot)).all() == []
