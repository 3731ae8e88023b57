"""Demo data for `scrm seed-demo`: a company tree and one login per role. Runs once per database."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import demo_customers, demo_tags, org_service
from crm.models import ROLE_LABELS, DepartmentKind, Staff

# username, display name, role, department key, password, wecom userid, mobile, data scope (None: the role's)
DEMO_STAFF = (
    ("admin", "系统管理员", "admin", "company", "Guanli-Demo-2026", "WangZong", "13800138001", None),
    ("manager", "李经理", "manager", "branch", "Jingli-Demo-2026", "LiJingLi", "13800138002", None),
    ("supervisor", "张主管", "supervisor", "team_1", "Zhuguan-Demo-2026", "ZhangZhuGuan", "13800138003", "department"),
    ("sales1", "王小明", "sales", "team_1", "Xiaoshou-Demo-2026", "WangXiaoMing", "13800138004", None),
    ("sales2", "赵小红", "sales", "team_2", "Xiaoshou-Demo-2026", "ZhaoXiaoHong", "13800138005", None),
    ("risk", "钱风控", "risk", "company", "Fengkong-Demo-2026", "QianFengKong", "13800138006", None),
    ("finance", "孙财务", "finance", "company", "Caiwu-Demo-2026", "SunCaiWu", "13800138007", None),
    ("collector", "周催收", "collector", "company", "Cuishou-Demo-2026", "ZhouCuiShou", "13800138008", None),
)


def seed(session: Session) -> list[str]:
    """Create the demo company and staff; nothing when the staff member 'admin' already exists."""
    if session.scalar(select(Staff.id).where(Staff.username == "admin")) is not None:
        return demo_customers.seed(session) + demo_tags.seed(session)  # staff seeded before: customers still once
    company = org_service.create_department(session, "总公司", DepartmentKind.COMPANY, None)
    center = org_service.create_department(session, "华东中心", DepartmentKind.CENTER, company.id)
    branch = org_service.create_department(session, "上海分部", DepartmentKind.BRANCH, center.id)
    team_1 = org_service.create_department(session, "销售一组", DepartmentKind.TEAM, branch.id)
    team_2 = org_service.create_department(session, "销售二组", DepartmentKind.TEAM, branch.id)
    departments = {"company": company, "center": center, "branch": branch, "team_1": team_1, "team_2": team_2}
    lines = ["演示账号（登录 /console/）："]
    for username, name, role, dept, password, wecom_userid, mobile, data_scope in DEMO_STAFF:
        staff = org_service.create_staff(session, org_service.StaffInput(
            username=username, display_name=name, role=role, department_id=departments[dept].id,
            password=password, wecom_userid=wecom_userid, mobile=mobile, data_scope=data_scope,
            region="上海", capacity=200, level=1))
        lines.append(f"  {ROLE_LABELS[role]:<6} {username} / {password}  {name} · {departments[dept].name}"
                     f" · 手机 {staff.mobile_masked}")
    return lines + demo_customers.seed(session) + demo_tags.seed(session)  # after the staff it assigns customers to
