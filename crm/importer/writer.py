"""Set-based creation of new customers, with exactly the rows :func:`crm.customers.intake` writes
for a new lead in a pool: the customer (name initials by :func:`crm.customers.initials`, sealed PII
in the vault's format), its owner history ("create", note "import:<source>") and its "created"
timeline event.

A lead the allocation rules already gave to someone (:func:`crm.allocation.plan`, before the
insert) is written once, owned: status owned, ``assigned_at``, ``protected_until``; its "create"
history row goes from the pool to the owner and its "created" event says who it was given to.

PostgreSQL: COPY the batch into a temporary table, then one statement inserts the customers
(``ON CONFLICT DO NOTHING``: a lead another channel created a moment ago is skipped, not an error),
and from its RETURNING set the owner-history and timeline rows. SQLite: executemany with
``ON CONFLICT DO NOTHING RETURNING``. Either way, what was not returned lost a race and is
re-matched as an existing customer by the caller.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core import pii
from core.db import is_postgres
from crm import customers
from crm.importer.rows import Lead
from crm.models import Customer, CustomerEvent, CustomerStatus, OwnerChange, Staff, Stage

CHANNEL = "import"
EVENT_DATA = {"channel": CHANNEL}


class Sealer:
    """:func:`core.pii.seal` and :func:`core.pii.blind_index` with the cipher and the HMAC key
    schedule built once instead of once per value (same output format, same key ring)."""

    def __init__(self, ring: pii.Keyring | None = None) -> None:
        ring = ring or pii.keyring()
        self.key_id = ring.active_id
        self._aes = AESGCM(ring.keys[ring.active_id])
        self._mac = {kind: hmac.new(ring.index_key, f"{kind}:".encode(), hashlib.sha256) for kind in pii.KINDS}
        self._ad = {kind: kind.encode() for kind in pii.KINDS}
        self._pool, self._pos = b"", 0

    def index(self, kind: str, normalized: str) -> str:
        mac = self._mac[kind].copy()
        mac.update(normalized.encode())
        return mac.hexdigest()

    def _nonce(self) -> bytes:
        """A fresh random 96-bit nonce, cut from a 12 KiB block of os.urandom (one system call per
        1,024 values instead of one per value: the same randomness, much cheaper under load)."""
        if self._pos >= len(self._pool):
            self._pool, self._pos = os.urandom(12 * 1024), 0
        self._pos += 12
        return self._pool[self._pos - 12:self._pos]

    def seal(self, kind: str, normalized: str) -> str:
        nonce = self._nonce()
        body = nonce + self._aes.encrypt(nonce, normalized.encode(), self._ad[kind])
        return f"{self.key_id}.{base64.urlsafe_b64encode(body).decode().rstrip('=')}"


_initials_slow = lru_cache(maxsize=65536)(customers.initials)


@lru_cache(maxsize=32768)
def _char_initial(ch: str) -> str | None:
    """The initial of one Chinese character in its default reading (None: not a Chinese character)."""
    from pypinyin.constants import PINYIN_DICT

    return customers.initials(ch) if ord(ch) in PINYIN_DICT else None


def _phrases() -> dict[str, object]:
    from pypinyin.constants import PHRASES_DICT

    return PHRASES_DICT


def initials(name: str) -> str:
    """:func:`crm.customers.initials`, fast for the usual name. pypinyin reads a polyphonic character
    differently only inside a phrase of its phrase dictionary; a name of Chinese characters none of
    whose substrings is such a phrase reads character by character, in each one's default reading,
    so the per-character initials (cached) are exactly the answer. Anything else goes the slow way."""
    n = len(name)
    if not 0 < n <= 8:
        return _initials_slow(name)
    phrases = _phrases()
    for i in range(n - 1):
        for j in range(i + 2, n + 1):
            if name[i:j] in phrases:
                return _initials_slow(name)
    out = []
    for ch in name:
        initial = _char_initial(ch)
        if initial is None:
            return _initials_slow(name)
        out.append(initial)
    return "".join(out)[:64]


@dataclass(slots=True)
class Prepared:
    lead: Lead
    phone_index: str | None
    id_index: str | None

    @property
    def key(self) -> str:
        return self.phone_index or self.id_index or ""


_STAGE_COLUMNS = (
    "seq", "name", "name_initials", "phone_enc", "phone_index", "phone_masked", "id_number_enc", "id_number_index",
    "id_number_masked", "source", "region", "customer_type", "demand_amount", "demand_term_months",
    "demand_purpose", "grade", "note",
)
_STAGE_TYPES = ("integer", *["text"] * 11, "bigint", "integer", "text", "text", "text")


def stage_row(sealer: Sealer, p: Prepared) -> tuple[object, ...]:
    """The customer's column values (``_CUSTOMER_COLUMNS``), PII sealed."""
    lead = p.lead
    phone = (sealer.seal(pii.PHONE, lead.phone), p.phone_index, pii.mask_phone(lead.phone)) if lead.phone \
        else (None, None, None)
    ident = (sealer.seal(pii.ID_NUMBER, lead.id_number), p.id_index, pii.mask_id_number(lead.id_number)) \
        if lead.id_number else (None, None, None)
    return (lead.name, initials(lead.name), *phone, *ident, lead.source, lead.region, lead.customer_type,
            lead.demand_amount, lead.demand_term_months, lead.demand_purpose, lead.grade, lead.note)


def insert_new(session: Session, rows: list[tuple[object, ...]], *, pool_id: int,
               actor_staff_id: int | None, now: datetime, owners: list[int | None] | None = None,
               protected_until: datetime | None = None) -> dict[str, int]:
    """Create customers from :func:`stage_row` tuples; returns identity key (phone index, else ID
    index) -> new id. A row missing from the answer conflicted with a customer created meanwhile.
    ``owners``: one planned owner (or None: into the pool) per row."""
    if not rows:
        return {}
    owners = owners if owners is not None else [None] * len(rows)
    if is_postgres(session):
        return _insert_postgres(session, rows, owners, pool_id=pool_id, actor_staff_id=actor_staff_id, now=now,
                                protected_until=protected_until)
    return _insert_generic(session, rows, owners, pool_id=pool_id, actor_staff_id=actor_staff_id, now=now,
                           protected_until=protected_until)


_CUSTOMER_COLUMNS = _STAGE_COLUMNS[1:]


def _insert_postgres(session: Session, rows: list[tuple[object, ...]], owners: list[int | None], *, pool_id: int,
                     actor_staff_id: int | None, now: datetime, protected_until: datetime | None) -> dict[str, int]:
    from psycopg.errors import UniqueViolation

    raw = session.connection().connection.driver_connection
    cols = ", ".join(_CUSTOMER_COLUMNS)
    stage_def = ", ".join(f"{c} {t}" for c, t in zip(_STAGE_COLUMNS, _STAGE_TYPES, strict=True))
    with raw.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS scrm_import_stage ({stage_def}, owner_id bigint) ON COMMIT DROP")
        cur.execute("TRUNCATE scrm_import_stage")
        with cur.copy(f"COPY scrm_import_stage ({', '.join(_STAGE_COLUMNS)}, owner_id) FROM STDIN") as copy:
            write = copy.write_row
            for seq, (row, owner) in enumerate(zip(rows, owners, strict=True)):
                write((seq, *row, owner))
        params = {"stage": Stage.NEW.value, "pool_status": CustomerStatus.POOL.value,
                  "owned": CustomerStatus.OWNED.value, "pool": pool_id, "now": now, "protect": protected_until,
                  "channel": CHANNEL, "actor": actor_staff_id, "data": json.dumps(EVENT_DATA)}
        # Plain INSERT first (a speculative ON CONFLICT insertion costs ~15% more on every row): the
        # rows were matched against the database just before. Only if another channel created one of
        # these people in between does the batch go again, skipping the conflicts.
        cur.execute("SAVEPOINT scrm_import_create")
        try:
            cur.execute(_CREATE_SQL.format(cols=cols, conflict=""), params)
            created = dict(cur.fetchall())
        except UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT scrm_import_create")
        else:
            cur.execute("RELEASE SAVEPOINT scrm_import_create")
            return created
        cur.execute(_CREATE_SQL.format(cols=cols, conflict="ON CONFLICT DO NOTHING"), params)
        return dict(cur.fetchall())


_CREATE_SQL = """
    WITH ins AS (
        INSERT INTO customer ({cols}, owner_id, stage, status, pool_id, assigned_at, protected_until,
                              created_at, updated_at, stage_changed_at)
        SELECT {cols}, owner_id, %(stage)s,
               CASE WHEN owner_id IS NULL THEN %(pool_status)s ELSE %(owned)s END,
               CASE WHEN owner_id IS NULL THEN %(pool)s END,
               CASE WHEN owner_id IS NOT NULL THEN %(now)s END,
               CASE WHEN owner_id IS NOT NULL THEN %(protect)s::timestamptz END,
               %(now)s, %(now)s, %(now)s
        FROM scrm_import_stage ORDER BY seq
        {conflict}
        RETURNING id, owner_id, source, phone_index, id_number_index
    ), oc AS (
        INSERT INTO customer_owner_change (customer_id, from_owner_id, to_owner_id, from_pool_id, to_pool_id,
                                           reason, note, by_staff_id, at)
        SELECT id, NULL, owner_id, CASE WHEN owner_id IS NOT NULL THEN %(pool)s END,
               CASE WHEN owner_id IS NULL THEN %(pool)s END, 'create', left(%(channel)s || ':' || source, 200),
               %(actor)s, %(now)s FROM ins
    ), ev AS (
        INSERT INTO customer_event (customer_id, at, kind, summary, actor_staff_id, data)
        SELECT ins.id, %(now)s, 'created',
               '新客户（来源：' || ins.source || '）' || coalesce('，分配给 ' || s.display_name, ''),
               %(actor)s, %(data)s::json
        FROM ins LEFT JOIN staff AS s ON s.id = ins.owner_id
    )
    SELECT coalesce(phone_index, id_number_index), id FROM ins
"""


def _insert_generic(session: Session, rows: list[tuple[object, ...]], owners: list[int | None], *, pool_id: int,
                    actor_staff_id: int | None, now: datetime, protected_until: datetime | None) -> dict[str, int]:
    if session.get_bind().dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    params = []
    for row, owner in zip(rows, owners, strict=True):
        values = dict(zip(_CUSTOMER_COLUMNS, row, strict=True))
        values.update(stage=Stage.NEW.value, created_at=now, updated_at=now, stage_changed_at=now, owner_id=owner,
                      status=CustomerStatus.POOL.value if owner is None else CustomerStatus.OWNED.value,
                      pool_id=pool_id if owner is None else None, assigned_at=None if owner is None else now,
                      protected_until=None if owner is None else protected_until)
        params.append(values)
    stmt = dialect_insert(Customer).on_conflict_do_nothing().returning(
        Customer.id, Customer.owner_id, Customer.source, Customer.phone_index, Customer.id_number_index)
    created = session.execute(stmt, params).all()
    if not created:
        return {}
    owner_ids = {o for _c, o, *_ in created if o is not None}
    names = dict(session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(owner_ids))).all()) \
        if owner_ids else {}
    session.execute(insert(OwnerChange), [
        {"customer_id": cid, "to_owner_id": owner, "from_pool_id": pool_id if owner else None,
         "to_pool_id": None if owner else pool_id, "reason": "create", "note": f"{CHANNEL}:{source}"[:200],
         "by_staff_id": actor_staff_id, "at": now} for cid, owner, source, _p, _i in created])
    session.execute(insert(CustomerEvent), [
        {"customer_id": cid, "at": now, "kind": "created",
         "summary": f"新客户（来源：{source}）" + (f"，分配给 {names.get(owner, owner)}" if owner else ""),
         "actor_staff_id": actor_staff_id, "data": EVENT_DATA} for cid, owner, source, _p, _i in created])
    return {(p or i): cid for cid, _o, _s, p, i in created}
