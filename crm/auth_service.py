"""Staff authentication: password login with lockout, console sessions, API tokens.

Login never raises inside the transaction: it returns a :class:`LoginResult` so that the failure
counter and the audit entry of a refused login are committed, and only then refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.security import hash_password, needs_rehash, new_token, token_digest, verify_password
from core.settings import get_settings
from crm.exceptions import AccountLocked, LoginRefused, StaffNotFound, ValidationFailed
from crm.models import ApiToken, Staff, StaffSession, StaffStatus


@dataclass(frozen=True)
class LoginResult:
    staff: Staff | None
    error: LoginRefused | AccountLocked | None = None


def authenticate(session: Session, username: str, password: str, ip: str | None = None) -> LoginResult:
    settings = get_settings()
    now = clock.now()
    staff = session.scalar(select(Staff).where(Staff.username == username.strip()))
    actor = audit.Actor("staff", staff.id if staff else None, username.strip()[:60] or "?", ip)
    if staff is not None and staff.locked_until is not None and staff.locked_until > now:
        audit.record(session, "auth.login_locked", entity_type="staff", entity_id=staff.id, actor=actor)
        return LoginResult(None, AccountLocked())
    ok = verify_password(staff.password_hash if staff else None, password)
    if staff is None or not ok or staff.status != StaffStatus.ACTIVE:
        if staff is not None:
            # Decided by the database: concurrent failures all count.
            max_failures = settings.login_max_failures
            session.execute(
                update(Staff).where(Staff.id == staff.id).values(
                    failed_logins=Staff.failed_logins + 1,
                    locked_until=case(
                        (Staff.failed_logins + 1 >= max_failures,
                         now + timedelta(minutes=settings.login_lockout_minutes)),
                        else_=Staff.locked_until,
                    ),
                )
            )
            session.refresh(staff)
        locked = staff is not None and staff.locked_until is not None and staff.locked_until > now
        reason = "departed" if staff is not None and ok else "bad_credentials"
        audit.record(session, "auth.login_failed", entity_type="staff", entity_id=staff.id if staff else None,
                     detail=f"{reason}; locked={locked}", actor=actor)
        return LoginResult(None, AccountLocked() if locked else LoginRefused())
    staff.failed_logins, staff.locked_until, staff.last_login_at = 0, None, now
    if staff.password_hash and needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    session.flush()
    audit.record(session, "auth.login", entity_type="staff", entity_id=staff.id, actor=actor)
    return LoginResult(staff)


def open_session(session: Session, staff: Staff, ip: str | None = None,
                 user_agent: str | None = None) -> tuple[str, StaffSession]:
    token = new_token()
    now = clock.now()
    row = StaffSession(
        token_hash=token_digest(token), staff_id=staff.id, csrf_token=new_token(24), created_at=now,
        expires_at=now + timedelta(minutes=get_settings().session_ttl_minutes), ip=ip,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(row)
    session.flush()
    return token, row


def resolve_session(session: Session, token: str | None) -> StaffSession | None:
    """The live session for a cookie token, or None (unknown, expired, revoked, staff departed)."""
    if not token:
        return None
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == token_digest(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= clock.now():
        return None
    if row.staff.status != StaffStatus.ACTIVE:
        return None
    return row


def close_session(session: Session, token: str | None) -> None:
    if not token:
        return
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == token_digest(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = clock.now()
        session.flush()
        audit.record(session, "auth.logout", entity_type="staff", entity_id=row.staff_id,
                     actor=audit.Actor("staff", row.staff_id, row.staff.display_name))


def issue_api_token(session: Session, staff_id: int, name: str, ttl_days: int | None = 365) -> tuple[str, ApiToken]:
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise StaffNotFound()
    if not name.strip():
        raise ValidationFailed("请填写令牌名称", field="name")
    if ttl_days is not None and not 1 <= ttl_days <= 3650:
        raise ValidationFailed("有效期必须在 1–3650 天之间", field="ttl_days")
    token = "scrm_" + new_token()
    now = clock.now()
    row = ApiToken(
        token_hash=token_digest(token), prefix=token[:12], name=name.strip()[:80], staff_id=staff.id,
        created_at=now, expires_at=now + timedelta(days=ttl_days) if ttl_days else None,
    )
    session.add(row)
    session.flush()
    audit.record(session, "api_token.issue", entity_type="api_token", entity_id=row.id,
                 after={"name": row.name, "staff_id": staff.id, "prefix": row.prefix})
    return token, row


def resolve_api_token(session: Session, token: str | None) -> Staff | None:
    if not token:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    now = clock.now()
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.staff.status != StaffStatus.ACTIVE:
        return None
    # Written at most once a minute, so API traffic does not turn every read into a write.
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = now
        session.flush()
    return row.staff


def revoke_api_token(session: Session, token_id: int, by_staff_id: int, *, any_owner: bool = False) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None or (row.staff_id != by_staff_id and not any_owner):
        from crm.exceptions import NotFound

        raise NotFound("令牌不存在")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        session.flush()
        audit.record(session, "api_token.revoke", entity_type="api_token", entity_id=row.id)
    return row


def list_api_tokens(session: Session, staff_id: int) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.staff_id == staff_id).order_by(ApiToken.id.desc())))
