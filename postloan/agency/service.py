"""Outsourcing use cases: agencies and their users (managers), assigning and recalling cases (managers),
and what an agency user may do in the portal (their agency's active cases only; everything logged).

An agency user is not staff: the portal authenticates them here (:func:`authenticate`) and every read or
write of theirs goes through :func:`case_for`, which answers :class:`~postloan.exceptions.CaseNotFound` (404)
for any case not actively assigned to their agency, and writes an ``agency.*`` row to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock, password_policy, security
from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from crm import auth_service
from crm.models import Customer
from crm.scope import Viewer
from lending.models import Loan
from postloan import actions, history
from postloan.agency_models import Agency, AgencyAssignment, AgencyUser
from postloan.cases import visible_clause
from postloan.exceptions import CaseClosed, CaseNotFound
from postloan.models import CollectionAction, CollectionCase

LOGIN_REALM = "agency"  # the portal's own failure counters (crm.auth_service): throttled like the console's
PORTAL_KINDS = {"call": "电话", "message": "短信/消息", "note": "备注"}


class AgencyInvalid(ValidationFailed):
    code = "agency_invalid"
    message = "委外信息不正确"


class AlreadyOutsourced(Conflict):
    code = "agency_already_assigned"
    message = "该案件已委外，请先收回再重新委外"


def _manager(viewer: Viewer) -> None:
    if viewer.role not in actions.MANAGERS:
        raise PermissionDenied("只有经理或管理员可以管理委外")


def parse_rate(text: str) -> Decimal:
    """A commission rate typed as a percentage ("15" or "12.5") → Decimal fraction (0.15, 0.125)."""
    try:
        percent = Decimal((text or "").strip().rstrip("%"))
    except InvalidOperation:
        raise AgencyInvalid("佣金比例须是数字，如 15 表示 15%", field="commission_rate") from None
    if not Decimal(0) < percent < Decimal(100) or percent != percent.quantize(Decimal("0.01")):
        raise AgencyInvalid("佣金比例须在 0–100% 之间，最多两位小数", field="commission_rate")
    return (percent / 100).quantize(Decimal("0.0001"))


def create_agency(session: Session, viewer: Viewer, *, name: str, commission_rate: Decimal) -> Agency:
    _manager(viewer)
    name = (name or "").strip()[:80]
    if not name:
        raise AgencyInvalid("请填写机构名称", field="name")
    if session.scalar(select(Agency.id).where(Agency.name == name)) is not None:
        raise AgencyInvalid("已有同名机构", field="name")
    agency = Agency(name=name, commission_rate=commission_rate, active=True, created_at=clock.now())
    session.add(agency)
    session.flush()
    audit.record(session, "agency.create", entity_type="postloan_agency", entity_id=agency.id,
                 after={"name": name, "commission_rate": str(commission_rate)})
    return agency


def create_user(session: Session, viewer: Viewer, *, agency_id: int, username: str, display_name: str,
                password: str) -> AgencyUser:
    _manager(viewer)
    if session.get(Agency, agency_id) is None:
        raise NotFound("委外机构不存在")
    username = (username or "").strip()[:64]
    if not username or not username.isascii():
        raise AgencyInvalid("登录名须是字母、数字或符号", field="username")
    if session.scalar(select(AgencyUser.id).where(AgencyUser.username == username)) is not None:
        raise AgencyInvalid("登录名已被使用", field="username")
    problem = password_policy.problem(password, username)
    if problem:
        raise AgencyInvalid(problem, field="password")
    user = AgencyUser(agency_id=agency_id, username=username, display_name=(display_name or username).strip()[:64],
                      password_hash=security.hash_password(password), active=True, created_at=clock.now())
    session.add(user)
    session.flush()
    audit.record(session, "agency.user_create", entity_type="postloan_agency_user", entity_id=user.id,
                 after={"agency_id": agency_id, "username": username})
    return user


def agencies(session: Session) -> list[Agency]:
    return list(session.scalars(select(Agency).order_by(Agency.id)))


def users_of(session: Session) -> list[AgencyUser]:
    return list(session.scalars(select(AgencyUser).order_by(AgencyUser.agency_id, AgencyUser.id)))


def _visible_case(session: Session, viewer: Viewer, case_id: int) -> CollectionCase:
    """The case, if in the manager's scope (``postloan.cases.visible_clause``); else :class:`CaseNotFound`."""
    case = session.scalar(select(CollectionCase).where(CollectionCase.id == case_id, visible_clause(viewer)))
    if case is None:
        raise CaseNotFound()
    return case


def assign(session: Session, viewer: Viewer, *, case_id: int, agency_id: int) -> AgencyAssignment:
    """Hand an open case to an agency at its current commission rate. Of two at once, one wins."""
    _manager(viewer)
    case = _visible_case(session, viewer, case_id)
    if case.status != "open":
        raise CaseClosed()
    agency = session.get(Agency, agency_id)
    if agency is None or not agency.active:
        raise AgencyInvalid("请选择在合作中的委外机构", field="agency_id")
    row = AgencyAssignment(case_id=case.id, agency_id=agency.id, commission_rate=agency.commission_rate,
                           assigned_at=clock.now(), assigned_by_staff_id=viewer.staff_id)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise AlreadyOutsourced() from None
    loan = session.get(Loan, case.loan_id)
    history.log(session, loan, "assign", staff_id=viewer.staff_id, case_id=case.id,
                note=f"委外给 {agency.name}（佣金 {agency.commission_rate * 100:.2f}%）")
    audit.record(session, "agency.assign", entity_type="postloan_case", entity_id=case.id,
                 after={"agency": agency.name, "commission_rate": str(agency.commission_rate)})
    return row


def recall(session: Session, viewer: Viewer, *, case_id: int, reason: str = "") -> AgencyAssignment:
    """Take a case back from its agency, at any time (a conditional update: recalled once)."""
    _manager(viewer)
    _visible_case(session, viewer, case_id)
    row = active_assignment(session, case_id)
    if row is None:
        raise NotFound("该案件当前没有委外")
    done = session.execute(update(AgencyAssignment).where(AgencyAssignment.id == row.id,
                                                          AgencyAssignment.recalled_at.is_(None))
                           .values(recalled_at=clock.now(), recalled_by_staff_id=viewer.staff_id,
                                   recall_reason=(reason or "").strip()[:200] or None))
    if done.rowcount != 1:
        raise NotFound("该案件当前没有委外")
    session.refresh(row)
    case = session.get(CollectionCase, case_id)
    agency = session.get(Agency, row.agency_id)
    history.log(session, session.get(Loan, case.loan_id), "assign", staff_id=viewer.staff_id, case_id=case_id,
                note=f"从 {agency.name} 收回委外" + (f"：{row.recall_reason}" if row.recall_reason else ""))
    audit.record(session, "agency.recall", entity_type="postloan_case", entity_id=case_id,
                 after={"agency": agency.name}, detail=row.recall_reason)
    return row


def active_assignment(session: Session, case_id: int) -> AgencyAssignment | None:
    return session.scalar(select(AgencyAssignment).where(AgencyAssignment.case_id == case_id,
                                                         AgencyAssignment.recalled_at.is_(None)))


def active_assignments(session: Session) -> list[tuple[AgencyAssignment, Agency, CollectionCase]]:
    return list(session.execute(
        select(AgencyAssignment, Agency, CollectionCase).join(Agency, Agency.id == AgencyAssignment.agency_id)
        .join(CollectionCase, CollectionCase.id == AgencyAssignment.case_id)
        .where(AgencyAssignment.recalled_at.is_(None)).order_by(AgencyAssignment.id.desc())).all())


# --- the portal -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PortalUser:
    id: int
    agency_id: int
    agency_name: str
    display_name: str
    ip: str | None = None

    @property
    def actor(self) -> audit.Actor:
        return audit.Actor("agency", self.id, f"{self.agency_name}·{self.display_name}", self.ip)


def authenticate(session: Session, username: str, password: str, ip: str | None = None) -> AgencyUser | None:
    """The agency user for a name and password, or None; every refusal (unknown name, wrong password, the user
    or their agency stopped) is written to the audit log (``agency.portal.login_failed``), the reason kept there
    and nowhere else."""
    name = (username or "").strip()
    user = session.scalar(select(AgencyUser).where(AgencyUser.username == name))
    ok = security.verify_password(user.password_hash if user else None, password or "")
    agency = session.get(Agency, user.agency_id) if user is not None else None
    if user is None or not ok:
        reason = "bad_credentials"
    elif not user.active:
        reason = "user_inactive"
    elif agency is None or not agency.active:
        reason = "agency_inactive"
    else:
        user.last_login_at = clock.now()
        session.flush()
        return user
    failures = auth_service.count_failure(session, name, ip, realm=LOGIN_REALM)
    audit.record(session, "agency.portal.login_failed", entity_type="postloan_agency_user",
                 entity_id=user.id if user else None, detail=f"{reason}; recent failures={failures:.0f}",
                 actor=audit.Actor("agency", user.id if user else None, name[:60] or "?", ip))
    return None


def portal_user(session: Session, user_id: int, ip: str | None = None) -> PortalUser | None:
    user = session.get(AgencyUser, user_id)
    agency = session.get(Agency, user.agency_id) if user else None
    if user is None or not user.active or agency is None or not agency.active:
        return None
    return PortalUser(user.id, agency.id, agency.name, user.display_name, ip)


def log_access(session: Session, who: PortalUser, action: str, *, case_id: int | None = None,
               detail: str | None = None) -> None:
    audit.record(session, f"agency.{action}", entity_type="postloan_case" if case_id else "postloan_agency",
                 entity_id=case_id if case_id else who.agency_id, detail=detail, actor=who.actor)


@dataclass(frozen=True)
class PortalCase:
    case: CollectionCase
    customer_name: str  # masked
    phone_masked: str
    assigned_at: object


def _mask_name(name: str) -> str:
    name = (name or "").strip()
    return (name[:1] + "*" * max(1, len(name) - 1)) if name else "—"


def cases_for(session: Session, who: PortalUser) -> list[PortalCase]:
    rows = session.execute(
        select(CollectionCase, Customer, AgencyAssignment)
        .join(AgencyAssignment, AgencyAssignment.case_id == CollectionCase.id)
        .join(Customer, Customer.id == CollectionCase.customer_id)
        .where(AgencyAssignment.agency_id == who.agency_id, AgencyAssignment.recalled_at.is_(None))
        .order_by(CollectionCase.overdue_days.desc(), CollectionCase.id)).all()
    log_access(session, who, "portal.list", detail=f"{len(rows)} 个案件")
    return [PortalCase(case, _mask_name(customer.name), customer.phone_masked or "—", a.assigned_at)
            for case, customer, a in rows]


def case_for(session: Session, who: PortalUser, case_id: int, *, action: str = "portal.view") -> PortalCase:
    """The case if it is actively assigned to the user's agency; 404 otherwise. Logged either way."""
    row = session.execute(
        select(CollectionCase, Customer, AgencyAssignment)
        .join(AgencyAssignment, AgencyAssignment.case_id == CollectionCase.id)
        .join(Customer, Customer.id == CollectionCase.customer_id)
        .where(CollectionCase.id == case_id, AgencyAssignment.agency_id == who.agency_id,
               AgencyAssignment.recalled_at.is_(None))).first()
    if row is None:
        log_access(session, who, "portal.denied", case_id=case_id)
        raise CaseNotFound()
    log_access(session, who, action, case_id=case_id)
    case, customer, assignment = row
    return PortalCase(case, _mask_name(customer.name), customer.phone_masked or "—", assignment.assigned_at)


def history_for(session: Session, case_id: int, since: object) -> list[CollectionAction]:
    """The case's calls, messages, notes and promises since it was handed to the agency (what happened
    before, and the staff's assignments, are not theirs)."""
    return list(session.scalars(select(CollectionAction).where(CollectionAction.case_id == case_id,
                                                               CollectionAction.at >= since,
                                                               CollectionAction.kind != "assign")
                                .order_by(CollectionAction.at.desc(), CollectionAction.id.desc())))


def record_action(session: Session, who: PortalUser, case_id: int, *, kind: str, note: str) -> CollectionAction:
    """An agency user's call, message or note on their agency's case."""
    if kind not in PORTAL_KINDS:
        raise AgencyInvalid("请选择动作：电话、短信/消息或备注", field="kind")
    note = (note or "").strip()
    if not note:
        raise AgencyInvalid("请填写催收内容", field="note")
    found = case_for(session, who, case_id, action="portal.action")
    if found.case.status != "open":
        raise CaseClosed()
    loan = session.scalar(select(Loan).where(Loan.id == found.case.loan_id).with_for_update())
    return actions.write_action(session, loan, kind=kind, staff_id=None, outcome=None, with_promise=False,
                                note=f"［委外 {who.agency_name}·{who.display_name}］{note}"[:500],
                                promised_date=None, promised_amount=None, case_id=case_id)
