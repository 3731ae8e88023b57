"""Small explicit factories: make_department(session, …), make_staff(session, …)."""

from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from crm import org_service
from crm.models import Department, Staff

_seq = itertools.count(1)
PASSWORD = "Tiger-Lily-417"


def make_department(session: Session, name: str | None = None, kind: str = "company",
                    parent: Department | None = None) -> Department:
    return org_service.create_department(session, name or f"部门{next(_seq)}", kind,
                                         parent.id if parent else None)


def make_staff(session: Session, *, role: str = "sales", department: Department | None = None,
               username: str | None = None, display_name: str | None = None, password: str | None = PASSWORD,
               data_scope: str | None = None, **extra: object) -> Staff:
    n = next(_seq)
    department = department or make_department(session)
    return org_service.create_staff(session, org_service.StaffInput(
        username=username or f"user{n}", display_name=display_name or f"员工{n}", role=role,
        department_id=department.id, password=password, data_scope=data_scope, **extra))


def make_org(session: Session) -> dict[str, Department]:
    """company → center → branch → two teams."""
    company = make_department(session, "总公司", "company")
    center = make_department(session, "华东中心", "center", company)
    branch = make_department(session, "上海分部", "branch", center)
    team_a = make_department(session, "一组", "team", branch)
    team_b = make_department(session, "二组", "team", branch)
    return {"company": company, "center": center, "branch": branch, "team_a": team_a, "team_b": team_b}


def make_customer(session: Session, *, phone: str | None = None, owner: Staff | None = None, name: str = "张三",
                  **fields: object):
    from crm import customers

    n = next(_seq)
    data = customers.CustomerInput(name=name, phone=phone or f"139{n:08d}", **fields)
    return customers.intake(session, data, channel="manual", owner_id=owner.id if owner else None).customer
