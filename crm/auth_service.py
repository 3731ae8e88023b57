"""Staff authentication: password login, console sessions, API tokens.

Login never raises inside the transaction: it returns a :class:`LoginResult` so that the failure
counter and the audit entry of a refused login are committed, and only then refused.

Guessing is slowed, never answered with a lock an outsider could set off (issue 20): a sliding window
of failures per client IP refuses a flood (:func:`throttle_ip`), and a sliding window of failures per username makes
that username's next attempts wait, longer with every failure (:func:`login_delay_seconds`). Unknown
names, wrong passwords and departed accounts get one and the same answer. These counters live in the
database (``core.ratelimit`` with ``database=True``), also with Redis: a failure is counted in the very
transaction that records its audit entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from core import audit, clock, ratelimit
from core.errors import RateLimited
from core.security import hash_password, needs_rehash, new_token, token_digest, verify_password
from core.settings import get_settings
from crm.exceptions import LoginRefused, StaffNotFound, ValidationFailed
from crm.models import ApiToken, Staff, StaffSession, StaffStatus

# Failed logins per client IP, any usernames (sliding window). Failures only: fifty colleagues behind one
# office NAT logging in at nine are not a flood.
IP_LIMIT = (20, timedelta(minutes=10))
FAILURE_WINDOW = timedelta(minutes=15)  # failures of one username from anywhere (sliding window)


@dataclass(frozen=True)
class LoginResult:
    staff: Staff | None
    error: LoginRefused | None = None


# A realm is one login form with its own counters: "login" (the console and API staff), "agency" (the
# collection agencies' portal). The same throttle, delays and audit apply to each.
def _failure_key(username: str, realm: str = "login") -> str:
    # Any name, existing or not: an unknown name is delayed exactly like a real one.
    return f"{realm}.fail:" + username.strip().lower()[:64]


def _ip_key(ip: str | None, realm: str = "login") -> str:
    return f"{realm}.ip:{ip or 'unknown'}"


def throttle_ip(ip: str | None, realm: str = "login") -> None:
    """:class:`RateLimited` once this client failed more than :data:`IP_LIMIT` allows; the attempt is then
    refused before any password is checked. A read of its own: call it before the request's transaction."""
    limit, window = IP_LIMIT
    if ratelimit.sliding(_ip_key(ip, realm), window, add=False, database=True) >= limit:
        raise RateLimited("登录失败次数过多，请稍后再试", retry_after_seconds=int(window.total_seconds()) // 2)


def login_delay_seconds(username: str, realm: str = "login") -> float:
    """How long this username's next attempt waits before its password is checked.

    Nothing until ``SCRM_LOGIN_MAX_FAILURES`` failures fell in the last 15 minutes (from any IP), then
    1, 2, 4 … seconds, at most ``SCRM_LOGIN_MAX_DELAY_SECONDS``. The attempt is then checked like any
    other: an outsider who keeps failing makes the real user wait, never locks them out, and the right
    password from a fresh IP gets in. A read of its own: call it before the request's transaction."""
    settings = get_settings()
    over = (int(ratelimit.sliding(_failure_key(username, realm), FAILURE_WINDOW, add=False, database=True))
            - settings.login_max_failures)
    if over < 0:
        return 0.0
    return float(min(2 ** min(over, 16), settings.login_max_delay_seconds))


def record_throttled(session: Session, username: str, ip: str | None) -> None:
    audit.record(session, "auth.login_throttled", entity_type="staff", detail="too many attempts from this IP",
                 actor=audit.Actor("staff", None, username.strip()[:60] or "?", ip))


def count_failure(session: Session, username: str, ip: str | None, realm: str = "login") -> float:
    """Count a failed attempt against the username and the client (in ``session``'s transaction); the
    username's failures in the window, this one included."""
    failures = ratelimit.sliding(_failure_key(username, realm), FAILURE_WINDOW, session=session)
    ratelimit.sliding(_ip_key(ip, realm), IP_LIMIT[1], session=session)
    return failures


def authenticate(session: Session, username: str, password: str, ip: str | None = None,
                 delayed: float = 0.0) -> LoginResult:
    """Check a password. Every refusal is the same :class:`LoginRefused` (unknown name, wrong password,
    departed): nothing tells a guesser which names exist. ``delayed``: the wait the caller applied
    (:func:`login_delay_seconds`), kept in the audit entry."""
    now = clock.now()
    staff = session.scalar(select(Staff).where(Staff.username == username.strip()))
    actor = audit.Actor("staff", staff.id if staff else None, username.strip()[:60] or "?", ip)
    ok = verify_password(staff.password_hash if staff else None, password)
    if staff is None or not ok or staff.status != StaffStatus.ACTIVE:
        if staff is not None:
            # Decided by the database: concurrent failures all count.
            session.execute(update(Staff).where(Staff.id == staff.id).values(failed_logins=Staff.failed_logins + 1))
            session.refresh(staff)
        failures = count_failure(session, username, ip)
        reason = "departed" if staff is not None and ok else "bad_credentials"
        audit.record(session, "auth.login_failed", entity_type="staff", entity_id=staff.id if staff else None,
                     detail=f"{reason}; recent failures={failures:.0f}; delayed={delayed:.0f}s", actor=actor)
        return LoginResult(None, LoginRefused())
    staff.failed_logins, staff.locked_until, staff.last_login_at = 0, None, now
    if staff.password_hash and needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    session.flush()
    audit.record(session, "auth.login", entity_type="staff", entity_id=staff.id, actor=actor,
                 detail=f"delayed={delayed:.0f}s" if delayed else None)
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
    # the staff member and their department in the same statement: every console request reads both (Viewer.of)
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == token_digest(token))
                         .options(joinedload(StaffSession.staff).joinedload(Staff.department)))
    if row is None or row.revoked_at is not None or row.expires_at <= clock.now():
        return None
    if row.staff.status != StaffStatus.ACTIVE:
        return None
    return row


def staff_with_open_sessions(session: Session, *, exclude_scopes: set[str] | frozenset[str] = frozenset()) -> list[int]:
    """Ids of the active staff with a live console session (not revoked, not expired), but those whose data scope
    is in ``exclude_scopes``: whose figures a starting server computes first (``core.figure_refresh``)."""
    stmt = (select(Staff.id).join(StaffSession, StaffSession.staff_id == Staff.id)
            .where(StaffSession.revoked_at.is_(None), StaffSession.expires_at > clock.now(),
                   Staff.status == StaffStatus.ACTIVE)
            .group_by(Staff.id).order_by(Staff.id))
    if exclude_scopes:
        stmt = stmt.where(Staff.data_scope.not_in(sorted(exclude_scopes)))
    return list(session.scalars(stmt))


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
