"""Team group robots (群机器人): webhook keys per department, and team announcements through them.

The webhook key is the robot's only credential: it is sealed at rest (``core.pii.seal(PAYLOAD, …)``)
and shown only as a short hint. Managers (and admins) keep the robots of the departments in their
data scope. Posting reads the key in a short transaction and calls WeCom (``webhook/send``, no
access token) outside it; success is stamped and audit-logged afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.models_chat import WecomRobot
from core import audit, clock, pii
from core.db import unit_of_work
from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from crm.models import Department
from crm.permissions import WECOM_OPS
from crm.scope import Viewer, department_filter

MANAGERS = WECOM_OPS
MSGTYPES = ("markdown", "text")
MAX_CONTENT = 2000  # WeCom: text 2048 bytes, markdown 4096 bytes
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{8,80}$")


class RobotNotFound(NotFound):
    code = "wecom_robot_not_found"
    message = "群机器人不存在或不在您的数据范围内"


class RobotInvalid(ValidationFailed):
    code = "wecom_robot_invalid"
    message = "群机器人信息不正确"


class RobotNameTaken(Conflict):
    code = "wecom_robot_name_taken"
    message = "该部门已有同名的群机器人"


def ensure_manager(viewer: Viewer) -> None:
    if viewer.role not in MANAGERS:
        raise PermissionDenied("只有经理或系统管理员可以管理群机器人")


def parse_key(raw: str) -> str:
    """A bare key, or the webhook URL WeCom shows (…/cgi-bin/webhook/send?key=…)."""
    text = (raw or "").strip()
    if "key=" in text:
        text = (parse_qs(urlparse(text).query).get("key") or [""])[0].strip()
    if not _KEY_RE.match(text):
        raise RobotInvalid("Webhook 地址或 key 不正确：请粘贴群机器人的完整 Webhook 地址", field="webhook")
    return text


def _hint(key: str) -> str:
    return f"{key[:4]}…{key[-4:]}"


def _visible(viewer: Viewer):  # noqa: ANN202 - a SQL condition
    return WecomRobot.department_id.in_(select(Department.id).where(department_filter(viewer, Department.path)))


@dataclass(frozen=True)
class RobotRow:
    id: int
    name: str
    department: str
    key_hint: str
    enabled: bool
    last_posted_at: object


def list_robots(session: Session, viewer: Viewer) -> list[RobotRow]:
    ensure_manager(viewer)
    rows = session.execute(select(WecomRobot, Department.name).join(Department, Department.id == WecomRobot.department_id)
                           .where(_visible(viewer)).order_by(Department.path, WecomRobot.name)).all()
    return [RobotRow(r.id, r.name, dept, r.key_hint, r.enabled, r.last_posted_at) for r, dept in rows]


def get_robot(session: Session, viewer: Viewer | None, robot_id: int) -> WecomRobot:
    stmt = select(WecomRobot).where(WecomRobot.id == robot_id)
    if viewer is not None:
        ensure_manager(viewer)
        stmt = stmt.where(_visible(viewer))
    robot = session.scalar(stmt)
    if robot is None:
        raise RobotNotFound()
    return robot


def add_robot(session: Session, viewer: Viewer, *, name: str, department_id: int, webhook: str) -> WecomRobot:
    ensure_manager(viewer)
    name = re.sub(r"\s+", " ", (name or "").strip())
    if not name or len(name) > 60:
        raise RobotInvalid("请填写机器人名称（不超过 60 个字）", field="name")
    dept = session.scalar(select(Department).where(Department.id == department_id,
                                                   department_filter(viewer, Department.path)))
    if dept is None:
        raise RobotInvalid("部门不存在或不在您的数据范围内", field="department_id")
    key = parse_key(webhook)
    robot = WecomRobot(name=name, department_id=dept.id, webhook_key_enc=pii.seal(pii.PAYLOAD, key),
                       key_hint=_hint(key), enabled=True, created_by_staff_id=viewer.staff_id,
                       created_at=clock.now())
    try:
        with session.begin_nested():
            session.add(robot)
            session.flush()
    except IntegrityError:
        raise RobotNameTaken() from None
    audit.record(session, "wecom_robot.create", entity_type="wecom_robot", entity_id=robot.id,
                 after={"name": name, "department_id": dept.id, "key_hint": robot.key_hint})
    return robot


def delete_robot(session: Session, viewer: Viewer, robot_id: int) -> None:
    robot = get_robot(session, viewer, robot_id)
    audit.record(session, "wecom_robot.delete", entity_type="wecom_robot", entity_id=robot.id,
                 before={"name": robot.name, "department_id": robot.department_id, "key_hint": robot.key_hint})
    session.delete(robot)
    session.flush()


def _check_content(content: str, msgtype: str) -> str:
    if msgtype not in MSGTYPES:
        raise RobotInvalid("消息类型只能是 markdown 或 text", field="msgtype")
    content = (content or "").strip()
    if not content:
        raise RobotInvalid("请填写公告内容", field="content")
    if len(content) > MAX_CONTENT:
        raise RobotInvalid(f"公告内容不能超过 {MAX_CONTENT} 个字", field="content")
    return pii.mask_text(content)  # a team announcement never carries a customer's plaintext number


def post_announcement(robot_id: int, content: str, *, msgtype: str = "markdown", viewer: Viewer | None = None,
                      actor: audit.Actor | None = None) -> None:
    """Post to one robot's group chat. ``viewer`` None: the system (no scope check)."""
    from bot.gateway import get_gateway

    content = _check_content(content, msgtype)
    with unit_of_work() as session:
        robot = get_robot(session, viewer, robot_id)
        if not robot.enabled:
            raise RobotInvalid("该群机器人已停用")
        key = pii.open_sealed(pii.PAYLOAD, robot.webhook_key_enc)
    get_gateway().webhook_send(key, content, msgtype=msgtype)
    with unit_of_work() as session:
        robot = session.get(WecomRobot, robot_id)
        if robot is not None:
            robot.last_posted_at = clock.now()
        audit.record(session, "wecom_robot.post", entity_type="wecom_robot", entity_id=robot_id,
                     after={"msgtype": msgtype, "length": len(content)}, actor=actor)


def announce_to_department(department_id: int, content: str, *, msgtype: str = "markdown") -> int:
    """Post to every enabled robot of a department (system use). Returns how many were posted to."""
    with unit_of_work() as session:
        ids = list(session.scalars(select(WecomRobot.id).where(WecomRobot.department_id == department_id,
                                                               WecomRobot.enabled.is_(True))))
    for robot_id in ids:
        post_announcement(robot_id, content, msgtype=msgtype)
    return len(ids)
