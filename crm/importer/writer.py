"""Set-based creation of new customers, with exactly the rows :func:`crm.customers.intake` writes
for a new lead in a pool: the customer (name initials by :func:`crm.customers.initials`, sealed PII
in the vault's format), its owner history ("create", note "import:<source>") and its "created"
timeline event.

A lead the allocation rules already gave to someone (:func:`crm.allocation.plan`, before the
insert) is written once, owned: status owned, ``assigned_at``, ``protected_until``; its "create"
history row goes from the pool to the owner and its "created" event says who it was given to.

PostgreSQL: three COPYs straight into customer, owner history and timeline, with customer ids
drawn from the sequence beforehand (:func:`draw_ids`) and the rows already in COPY text
(:func:`copy_fields`, done while preparing), inside a savepoint. The rows were matched against the
database just before; if another channel created one of these people in between, its unique index
refuses the COPY, the savepoint rolls back and the batch goes again through a temporary table and
one ``INSERT … ON CONFLICT DO NOTHING`` statement that also writes the history and timeline rows of
what it inserted. SQLite: executemany with ``ON CONFLICT DO NOTHING RETURNING``. Either way, what
was not created lost a race and is re-matched as an existing customer by the caller.
"""

from __future__ import annotations

import hashlib
import json
import os
from binascii import b2a_base64
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
_URLSAFE = bytes.maketrans(b"+/", b"-_")  # base64 -> base64url, as base64.urlsafe_b64encode


class Sealer:
    """:func:`core.pii.seal` and :func:`core.pii.blind_index` with the cipher and the HMAC key
    schedule built once instead of once per value (same output format, same key ring)."""

    def __init__(self, ring: pii.Keyring | None = None) -> None:
        ring = ring or pii.keyring()
        self.key_id = ring.active_id
        self._aes = AESGCM(ring.keys[ring.active_id])
        # HMAC-SHA256 (RFC 2104) as its two SHA-256 states, keyed once: inner over the padded key
        # and the "kind:" prefix, outer over the padded key (what hmac.new computes, without its
        # Python wrapper on every value)
        key = ring.index_key if len(ring.index_key) <= 64 else hashlib.sha256(ring.index_key).digest()
        key = key.ljust(64, b"\0")
        self._inner = {kind: hashlib.sha256(bytes(b ^ 0x36 for b in key) + f"{kind}:".encode()) for kind in pii.KINDS}
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        self._ad = {kind: kind.encode() for kind in pii.KINDS}
        self._prefix = f"{self.key_id}."
        self._pool, self._pos = b"", 0

    def index(self, kind: str, normalized: str) -> str:
        inner = self._inner[kind].copy()
        inner.update(normalized.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

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
        return self._prefix + b2a_base64(body, newline=False).translate(_URLSAFE).decode().rstrip("=")


def _name_keys_slow(name: str) -> tuple[str, str]:
    return customers.initials(name), customers.full_pinyin(name)


_keys_slow = lru_cache(maxsize=65536)(_name_keys_slow)


@lru_cache(maxsize=32768)
def _char_syllable(ch: str) -> str | None:
    """The pinyin of one Chinese character in its default reading (None: not a Chinese character)."""
    from pypinyin.constants import PINYIN_DICT

    return customers.full_pinyin(ch) if ord(ch) in PINYIN_DICT else None


_PHRASES: dict[str, object] = {}
_CHAR_SYLLABLES: dict[str, str | None] = {}  # one entry per distinct character met (a few thousand at most)


def _phrases() -> dict[str, object]:
    if not _PHRASES:
        from pypinyin.constants import PHRASES_DICT

        _PHRASES.update(PHRASES_DICT)
    return _PHRASES


def name_keys(name: str) -> tuple[str, str]:
    """(:func:`crm.customers.initials`, :func:`crm.customers.full_pinyin`), fast for the usual name. pypinyin
    reads a polyphonic character differently only inside a phrase of its phrase dictionary; a name of Chinese
    characters none of whose substrings is such a phrase reads character by character, in each one's default
    reading, so the per-character syllables (cached) are exactly the answer. Anything else goes the slow way."""
    n = len(name)
    if not 0 < n <= 8:
        return _keys_slow(name)
    if n > 1:
        phrases = _PHRASES or _phrases()
        for i in range(n - 1):
            for j in range(i + 2, n + 1):
                if name[i:j] in phrases:
                    return _keys_slow(name)
    first = full = ""
    cache = _CHAR_SYLLABLES
    for ch in name:
        syllable = cache.get(ch, "")
        if syllable == "":
            syllable = cache[ch] = _char_syllable(ch)
        if not syllable:
            return _keys_slow(name)
        first += syllable[0]
        full += syllable
    return first[:64], full[:255]


_STAGE_COLUMNS = (
    "seq", "name", "name_initials", "name_pinyin", "phone_enc", "phone_index", "phone_masked", "id_number_enc", "id_number_index",
    "id_number_masked", "source", "region", "customer_type", "demand_amount", "demand_term_months",
    "demand_purpose", "grade", "note",
)
_STAGE_TYPES = ("integer", *["text"] * 12, "bigint", "integer", "text", "text", "text")
# Positions in a stage row (the customer's column values, ``_CUSTOMER_COLUMNS``).
NAME, INITIALS, PINYIN, PHONE_ENC, PHONE_INDEX, PHONE_MASKED, ID_ENC, ID_INDEX, ID_MASKED, SOURCE, REGION, \
    CUSTOMER_TYPE, AMOUNT, TERM, PURPOSE, GRADE, NOTE = range(17)


def stage_row(sealer: Sealer, lead: Lead, phone_index: str | None, id_index: str | None) -> tuple[object, ...]:
    """The customer's column values (``_CUSTOMER_COLUMNS``), PII sealed."""
    phone, ident = lead.phone, lead.id_number
    return (lead.name, *name_keys(lead.name),
            *((sealer.seal(pii.PHONE, phone), phone_index, pii.mask_phone(phone)) if phone else (None, None, None)),
            *((sealer.seal(pii.ID_NUMBER, ident), id_index, pii.mask_id_number(ident)) if ident
              else (None, None, None)),
            lead.source, lead.region, lead.customer_type, lead.demand_amount, lead.demand_term_months,
            lead.demand_purpose, lead.grade, lead.note)


def key(row: tuple[object, ...]) -> str:
    """A stage row's identity key: its phone index, else its ID index (what :func:`insert_new` answers by)."""
    return row[PHONE_INDEX] or row[ID_INDEX]  # type: ignore[return-value]


def insert_new(session: Session, rows: list[tuple[object, ...]], *, pool_id: int,
               actor_staff_id: int | None, now: datetime, owners: list[int | None] | None = None,
               protected_until: datetime | None = None, texts: list[str] | None = None,
               ids: list[int] | None = None) -> dict[str, int]:
    """Create customers from :func:`stage_row` tuples; returns identity key (phone index, else ID
    index) -> new id. A row missing from the answer conflicted with a customer created meanwhile.
    ``owners``: one planned owner (or None: into the pool) per row. PostgreSQL: ``texts``, the rows
    already in COPY text (:func:`copy_fields`, done while preparing); ``ids``, customer ids drawn
    from the sequence beforehand (:func:`draw_ids`; more are drawn if they do not suffice)."""
    if not rows:
        return {}
    owners = owners if owners is not None else [None] * len(rows)
    if is_postgres(session):
        return _insert_postgres(session, rows, owners, pool_id=pool_id, actor_staff_id=actor_staff_id, now=now,
                                protected_until=protected_until,
                                texts=texts if texts is not None else [copy_fields(row) for row in rows],
                                ids=ids or [])
    return _insert_generic(session, rows, owners, pool_id=pool_id, actor_staff_id=actor_staff_id, now=now,
                           protected_until=protected_until)


_CUSTOMER_COLUMNS = _STAGE_COLUMNS[1:]
NULL = _NULL = "\\N"  # COPY's NULL (text format)
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_value(value: object) -> str:
    """One value in COPY's text format."""
    if value is None:
        return _NULL
    return value.translate(_COPY_ESCAPES) if isinstance(value, str) else str(value)


def copy_fields(row: tuple[object, ...]) -> str:
    """A :func:`stage_row` tuple as COPY text (tab-separated). The free-text values (name, source,
    region, purpose, note; the rest are digits, enum values, masks, base64 and hex) are checked
    together for the four characters COPY escapes; the rare row that has one is escaped value by value."""
    name, initials_, pinyin, p_enc, p_index, p_mask, i_enc, i_index, i_mask, source, region, ctype, amount, term, purpose, \
        grade, note = row
    probe = f"{name}{source}{region}{purpose}{note}"
    if "\\" in probe or "\t" in probe or "\n" in probe or "\r" in probe:
        return "\t".join(map(copy_value, row))
    n = _NULL
    phone = f"{p_enc}\t{p_index}\t{p_mask}" if p_enc is not None else _NULL3
    ident = f"{i_enc}\t{i_index}\t{i_mask}" if i_enc is not None else _NULL3
    return (f"{name}\t{initials_}\t{pinyin}\t{phone}\t{ident}\t{source}\t{n if region is None else region}\t{ctype}\t"
            f"{n if amount is None else amount}\t{n if term is None else term}\t{n if purpose is None else purpose}\t"
            f"{n if grade is None else grade}\t{n if note is None else note}")


_NULL3 = "\\N\t\\N\t\\N"


def _insert_postgres(session: Session, rows: list[tuple[object, ...]], owners: list[int | None], *, pool_id: int,
                     actor_staff_id: int | None, now: datetime, protected_until: datetime | None,
                     texts: list[str], ids: list[int]) -> dict[str, int]:
    from psycopg.errors import UniqueViolation

    raw = session.connection().connection.driver_connection
    names = _owner_names(session, owners)
    with raw.cursor() as cur:
        # COPY straight into the tables (ids drawn from the sequence first): the rows were matched
        # against the database just before. If another channel created one of these people in
        # between, the unique index refuses the COPY and the batch goes again, skipping the conflicts.
        cur.execute("SAVEPOINT scrm_import_create")
        try:
            if len(ids) < len(rows):
                ids = [*ids, *_draw(cur, len(rows) - len(ids))]
            created = _copy_postgres(cur, rows, texts, ids, owners, names, pool_id=pool_id,
                                     actor_staff_id=actor_staff_id, now=now, protected_until=protected_until)
        except UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT scrm_import_create")
        else:
            cur.execute("RELEASE SAVEPOINT scrm_import_create")
            return created
        return _insert_skipping_conflicts(cur, rows, owners, pool_id=pool_id, actor_staff_id=actor_staff_id,
                                          now=now, protected_until=protected_until)


def _owner_names(session: Session, owners: list[int | None]) -> dict[int, str]:
    ids = {o for o in owners if o is not None}
    if not ids:
        return {}
    return dict(session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(ids))).all())


_SLICE = 1000  # rows per write of COPY data
_IDS_SQL = ("SELECT string_agg(nextval(s.seq)::text, ',') FROM "
            "(SELECT pg_get_serial_sequence('customer', 'id')::regclass AS seq) AS s, generate_series(1, %s)")


def _draw(cur, n: int) -> list[int]:  # noqa: ANN001 - a psycopg cursor
    text = cur.execute(_IDS_SQL, (n,)).fetchone()[0]
    return list(map(int, text.split(","))) if text else []


def draw_ids(session: Session, n: int) -> list[int]:
    """``n`` new customer ids from the sequence (PostgreSQL). Sequence values are not transactional:
    drawn on any connection, ahead of the insert, they stay ours; unused ones are gaps, as ever."""
    if n <= 0:
        return []
    with session.connection().connection.driver_connection.cursor() as cur:
        return _draw(cur, n)
_COPY_CUSTOMER = (f"COPY customer (id, {', '.join(_CUSTOMER_COLUMNS)}, owner_id, stage, status, pool_id, assigned_at, "
                  "protected_until, created_at, updated_at, stage_changed_at) FROM STDIN")
_COPY_OWNER_CHANGE = ("COPY customer_owner_change (customer_id, from_owner_id, to_owner_id, from_pool_id, to_pool_id, "
                      "reason, note, by_staff_id, at) FROM STDIN")
_COPY_EVENT = "COPY customer_event (customer_id, at, kind, summary, actor_staff_id, data) FROM STDIN"


def _copy_postgres(cur, rows: list[tuple[object, ...]], texts: list[str],  # noqa: ANN001 - a psycopg cursor
                   ids: list[int], owners: list[int | None], names: dict[int, str], *, pool_id: int,
                   actor_staff_id: int | None, now: datetime, protected_until: datetime | None) -> dict[str, int]:
    """The rows :func:`crm.customers.intake` writes (customer, "create" history, "created" event),
    as three COPYs; the per-owner and per-source parts of each line are formatted once, and the
    data goes in slices, so the server is already storing rows while the next slice is formatted."""
    ids = ids[:len(rows)]
    at = now.isoformat()
    actor = _NULL if actor_staff_id is None else str(actor_staff_id)
    protect = _NULL if protected_until is None else protected_until.isoformat()
    status_part = {None: f"{_NULL}\t{Stage.NEW.value}\t{CustomerStatus.POOL.value}\t{pool_id}\t{_NULL}\t{_NULL}"}
    for owner in set(owners):
        if owner is not None:
            status_part[owner] = f"{owner}\t{Stage.NEW.value}\t{CustomerStatus.OWNED.value}\t{_NULL}\t{at}\t{protect}"
    stamps = f"{at}\t{at}\t{at}"
    encoding = cur.connection.info.encoding
    with cur.copy(_COPY_CUSTOMER) as copy:
        for start in range(0, len(rows), _SLICE):
            end = start + _SLICE
            copy.write("".join([f"{cid}\t{text}\t{status_part[owner]}\t{stamps}\n" for cid, text, owner
                                in zip(ids[start:end], texts[start:end], owners[start:end], strict=True)])
                       .encode(encoding))
    history: dict[tuple[int | None, str], str] = {}
    timeline: dict[tuple[int | None, str], str] = {}
    data = copy_value(json.dumps(EVENT_DATA))
    for key in {(owner, row[SOURCE]) for row, owner in zip(rows, owners, strict=True)}:
        owner, source = key
        note = copy_value(f"{CHANNEL}:{source}"[:200])
        if owner is None:
            history[key] = f"{_NULL}\t{_NULL}\t{_NULL}\t{pool_id}\tcreate\t{note}\t{actor}\t{at}"
        else:
            history[key] = f"{_NULL}\t{owner}\t{pool_id}\t{_NULL}\tcreate\t{note}\t{actor}\t{at}"
        summary = f"新客户（来源：{source}）" + (f"，分配给 {names.get(owner, owner)}" if owner is not None else "")
        timeline[key] = f"{at}\tcreated\t{copy_value(summary[:300])}\t{actor}\t{data}"
    keys = [(owner, row[SOURCE]) for row, owner in zip(rows, owners, strict=True)]
    with cur.copy(_COPY_OWNER_CHANGE) as copy:
        copy.write("".join([f"{cid}\t{history[k]}\n" for cid, k in zip(ids, keys, strict=True)]).encode(encoding))
    with cur.copy(_COPY_EVENT) as copy:
        copy.write("".join([f"{cid}\t{timeline[k]}\n" for cid, k in zip(ids, keys, strict=True)]).encode(encoding))
    return {(row[PHONE_INDEX] or row[ID_INDEX]): cid for cid, row in zip(ids, rows, strict=True)}


def _insert_skipping_conflicts(cur, rows: list[tuple[object, ...]], owners: list[int | None], *,  # noqa: ANN001
                               pool_id: int, actor_staff_id: int | None, now: datetime,
                               protected_until: datetime | None) -> dict[str, int]:
    """The batch again after a conflict: COPY into a temporary table, then one statement inserts the
    customers ``ON CONFLICT DO NOTHING`` and, from its RETURNING set, the history and timeline rows."""
    cols = ", ".join(_CUSTOMER_COLUMNS)
    stage_def = ", ".join(f"{c} {t}" for c, t in zip(_STAGE_COLUMNS, _STAGE_TYPES, strict=True))
    cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS scrm_import_stage ({stage_def}, owner_id bigint) ON COMMIT DROP")
    cur.execute("TRUNCATE scrm_import_stage")
    with cur.copy(f"COPY scrm_import_stage ({', '.join(_STAGE_COLUMNS)}, owner_id) FROM STDIN") as copy:
        write = copy.write_row
        for seq, (row, owner) in enumerate(zip(rows, owners, strict=True)):
            write((seq, *row, owner))
    params = {"stage": Stage.NEW.value, "pool_status": CustomerStatus.POOL.value,
              "owned": CustomerStatus.OWNED.value, "pool": pool_id, "now": now, "protect": protected_until,
              "channel": CHANNEL, "actor": actor_staff_id, "data": json.dumps(EVENT_DATA)}
    cur.execute(_CREATE_SQL.format(cols=cols), params)
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
        ON CONFLICT DO NOTHING
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
               left('新客户（来源：' || ins.source || '）' || coalesce('，分配给 ' || s.display_name, ''), 300),
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
