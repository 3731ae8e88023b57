"""Auth primitives: password hashing (argon2id), random tokens and their digests, signed values."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Mapping

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from core.settings import get_settings


def _make_hasher() -> PasswordHasher:
    # argon2id with the library's recommended cost; the test suite (SCRM_ENV=test) uses the cheapest
    # parameters so that hundreds of test logins do not spend minutes hashing. Hashes carry their own
    # parameters, so verification works across both and `needs_rehash` upgrades old ones at login.
    if get_settings().env == "test":
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return PasswordHasher()


_hasher = _make_hasher()
# Verified against when the username does not exist, so both paths cost the same.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _serializer(salt: str) -> URLSafeTimedSerializer:
    key = get_settings().secret_key
    if not key:
        raise RuntimeError("SCRM_SECRET_KEY is not set (run `scrm init-secrets`)")
    return URLSafeTimedSerializer(key, salt=salt)


def sign(value: str, salt: str) -> str:
    return _serializer(salt).dumps(value)


def unsign(signed: str, salt: str, max_age: int) -> str | None:
    try:
        return _serializer(salt).loads(signed, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None


# Set by a reverse proxy: a loopback peer carrying one of them is relaying somebody else.
FORWARDING_HEADERS = ("x-forwarded-for", "x-real-ip", "forwarded")


def is_direct_loopback(client_host: str | None, headers: Mapping[str, str]) -> bool:
    """A request from this machine itself, not one a local reverse proxy relays (the simulators' controls)."""
    try:
        loopback = ipaddress.ip_address(client_host or "").is_loopback
    except ValueError:
        return False
    return loopback and not any(headers.get(h) for h in FORWARDING_HEADERS)
