"""Customer grades (客户等级) configuration: add, relabel, reorder; a grade in use cannot be deleted.

Grades are ranked 1 = best. Setting a customer's grade is crm.customers.set_grade.
"""

from __future__ import annotations

import re

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit
from core.errors import PermissionDenied, ValidationFailed
from crm.models import Customer, Grade, Role
from crm.scope import Viewer
from crm.tag_exceptions import GradeInUse, GradeNotFound, GradeTaken

GRADE_MANAGERS = frozenset({Role.ADMIN, Role.MANAGER})
_CODE = re.compile(r"[A-Z0-9]{1,8}")


def _ensure_manager(viewer: Viewer | None) -> None:
    if viewer is not None and viewer.role not in GRADE_MANAGERS:
        raise PermissionDenied("只有系统管理员或经理可以配置客户等级")


def _label(label: str | None) -> str:
    value = (label or "").strip()
    if not value:
        raise ValidationFailed("请填写等级名称", field="label")
    if len(value) > 40:
        raise ValidationFailed("等级名称不能超过 40 个字", field="label")
    return value


def list_grades(session: Session) -> list[Grade]:
    return list(session.scalars(select(Grade).order_by(Grade.rank)))


def get_grade(session: Session, code: str) -> Grade:
    grade = session.get(Grade, (code or "").strip().upper())
    if grade is None:
        raise GradeNotFound()
    return grade


def create_grade(session: Session, viewer: Viewer | None, code: str, label: str) -> Grade:
    """A new grade, ranked last."""
    _ensure_manager(viewer)
    code = (code or "").strip().upper()
    if not _CODE.fullmatch(code):
        raise ValidationFailed("等级代码须为 1–8 位大写字母或数字，如 A、S1", field="code")
    label = _label(label)
    if session.get(Grade, code) is not None:
        raise GradeTaken(f"等级代码「{code}」已存在")
    rank = (session.scalar(select(func.max(Grade.rank))) or 0) + 1
    grade = Grade(code=code, label=label, rank=rank)
    session.add(grade)
    session.flush()
    audit.record(session, "grade.create", entity_type="grade", entity_id=code, after={"label": label, "rank": rank})
    return grade


def edit_grade(session: Session, viewer: Viewer | None, code: str, label: str) -> Grade:
    _ensure_manager(viewer)
    grade = get_grade(session, code)
    label = _label(label)
    if label != grade.label:
        old, grade.label = grade.label, label
        session.flush()
        audit.record(session, "grade.edit", entity_type="grade", entity_id=grade.code, before={"label": old},
                     after={"label": label})
    return grade


def reorder_grades(session: Session, viewer: Viewer | None, codes: list[str]) -> list[Grade]:
    """Rank the grades in the order given (best first); every grade must be listed exactly once."""
    _ensure_manager(viewer)
    codes = [(c or "").strip().upper() for c in codes]
    existing = {g.code for g in list_grades(session)}
    if len(codes) != len(set(codes)) or set(codes) != existing:
        raise ValidationFailed("请按顺序列出全部等级，每个等级一次", field="codes")
    before = {g.code: g.rank for g in list_grades(session)}
    # Two steps so the unique rank never collides midway: park every rank out of the way, then set.
    session.execute(update(Grade).values(rank=-Grade.rank))
    for rank, code in enumerate(codes, start=1):  # a handful of grades, not customers
        session.execute(update(Grade).where(Grade.code == code).values(rank=rank))
    session.expire_all()
    audit.record(session, "grade.reorder", entity_type="grade", before={"order": ",".join(sorted(before, key=before.get))},
                 after={"order": ",".join(codes)})
    return list_grades(session)


def delete_grade(session: Session, viewer: Viewer | None, code: str) -> None:
    _ensure_manager(viewer)
    grade = get_grade(session, code)
    if session.scalar(select(exists().where(Customer.grade == grade.code))):
        raise GradeInUse(f"等级「{grade.label}」仍有客户在使用，不能删除")
    try:
        with session.begin_nested():  # the foreign key is the last word against a concurrent set_grade
            session.delete(grade)
            session.flush()
    except IntegrityError as exc:
        raise GradeInUse(f"等级「{grade.label}」仍有客户在使用，不能删除") from exc
    audit.record(session, "grade.delete", entity_type="grade", entity_id=grade.code, before={"label": grade.label})
