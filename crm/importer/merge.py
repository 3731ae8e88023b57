"""Rows of a batch that are people already in the database: merged into the existing record the way
:func:`crm.customers.intake` merges a lead, set-based.

* Blanks are filled, never overwritten: the phone or ID number (sealed) the record lacks, region,
  demand amount, term and purpose, and the name. The owner never changes (someone else's customer
  is a collision, 撞单: counted, both sides told). A row whose other identifier belongs to another
  record fills nothing if that identifier is what the record lacks (intake: "keep both untouched").
* Each row gets a "merged" timeline event saying what it filled in.
* Rows of one batch that land on the same record fill it in file order: the first row that has a
  value for a blank field gives it.

Every fill is one conditional ``UPDATE`` per record (``CASE WHEN <blank> THEN <new> ELSE <old>``),
so a value someone else wrote meanwhile is kept; an identifier another record took meanwhile makes
that record's fill fail alone (its savepoint), like intake's IntegrityError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import pii
from core.db import is_postgres
from crm.importer import dedup, writer
from crm.importer.writer import (
    AMOUNT,
    ID_ENC,
    ID_INDEX,
    ID_MASKED,
    INITIALS,
    NAME,
    PHONE_ENC,
    PHONE_INDEX,
    PHONE_MASKED,
    PINYIN,
    PURPOSE,
    REGION,
    SOURCE,
    TERM,
)
from crm.models import Customer, CustomerEvent

# What a merge may fill besides identifiers and the name, in the order intake lists them.
_FIELDS = (("region", REGION), ("demand_amount", AMOUNT), ("demand_term_months", TERM), ("demand_purpose", PURPOSE))


@dataclass
class Merge:
    """One row matched to an existing record. ``taken``: the row's identifier ("phone" or
    "id_number") that belongs to another record, if any."""

    row_number: int
    row: tuple[object, ...]
    cells: list[object]
    match: dedup.Existing
    taken: str | None = None
    filled: list[str] = field(default_factory=list)


def match_for(found: dict[str, dedup.Existing], row: tuple[object, ...]) -> tuple[dedup.Existing | None, str | None]:
    """The record a row merges into (the oldest one matching any identifier, as intake picks), and
    which of the row's identifiers belongs to another record, if any."""
    by_phone = found.get(row[PHONE_INDEX]) if row[PHONE_INDEX] else None  # type: ignore[arg-type]
    by_id = found.get(row[ID_INDEX]) if row[ID_INDEX] else None  # type: ignore[arg-type]
    if by_phone is None or by_id is None or by_phone.id == by_id.id:
        return by_phone or by_id, None
    return (by_phone, "id_number") if by_phone.id < by_id.id else (by_id, "phone")


def plan_fills(merges: list[Merge]) -> dict[int, dict[str, object]]:
    """customer id -> the values to write into its blanks (and each merge's ``filled``), in file order."""
    current: dict[int, dict[str, object]] = {}
    changes: dict[int, dict[str, object]] = {}
    for m in merges:
        e, row = m.match, m.row
        state = current.setdefault(e.id, {
            "phone": e.phone_index, "id_number": e.id_number_index, "region": e.region,
            "demand_purpose": e.demand_purpose, "demand_amount": e.demand_amount,
            "demand_term_months": e.demand_term_months, "name": e.name})
        if m.taken is not None and not state[m.taken]:
            continue  # filling it would take another record's identifier: intake keeps both untouched
        change = changes.setdefault(e.id, {})
        filled = m.filled
        if row[PHONE_INDEX] and not state["phone"]:
            state["phone"] = row[PHONE_INDEX]
            change.update(phone_enc=row[PHONE_ENC], phone_index=row[PHONE_INDEX], phone_masked=row[PHONE_MASKED])
            filled.append("phone")
        if row[ID_INDEX] and not state["id_number"]:
            state["id_number"] = row[ID_INDEX]
            change.update(id_number_enc=row[ID_ENC], id_number_index=row[ID_INDEX], id_number_masked=row[ID_MASKED])
            filled.append("id_number")
        for name, i in _FIELDS:
            value = row[i]
            if value not in (None, "") and state[name] in (None, ""):
                state[name] = change[name] = value
                filled.append(name)
        if row[NAME] and not state["name"]:
            state["name"] = change["name"] = row[NAME]
            change["name_initials"], change["name_pinyin"] = row[INITIALS], row[PINYIN]
            filled.append("name")
    return {cid: change for cid, change in changes.items() if change}


def _fill_statement(columns: tuple[str, ...]) -> Any:  # noqa: ANN401 - an UPDATE construct
    """UPDATE customer SET <each column> = CASE WHEN <it is blank> THEN :new ELSE <old> END."""
    c = Customer.__table__.c  # Core, not the ORM's bulk UPDATE by primary key: plain executemany
    no_phone, no_id, no_name = c.phone_index.is_(None), c.id_number_index.is_(None), c.name == ""
    blank = {"phone_enc": no_phone, "phone_index": no_phone, "phone_masked": no_phone, "id_number_enc": no_id,
             "id_number_index": no_id, "id_number_masked": no_id, "name": no_name, "name_initials": no_name, "name_pinyin": no_name,
             "region": c.region.is_(None) | (c.region == ""),
             "demand_purpose": c.demand_purpose.is_(None) | (c.demand_purpose == ""),
             "demand_amount": c.demand_amount.is_(None), "demand_term_months": c.demand_term_months.is_(None)}
    values: dict[str, Any] = {col: case((blank[col], bindparam(f"b_{col}")), else_=c[col]) for col in columns}
    values["updated_at"] = bindparam("b_now")
    return update(Customer.__table__).where(c.id == bindparam("b_id")).values(values)


def apply_fills(session: Session, changes: dict[int, dict[str, object]], now: datetime) -> set[int]:
    """Write the fills; returns the ids of records whose fill was refused (an identifier taken by
    another record meanwhile): those are left untouched."""
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for cid, change in sorted(changes.items()):
        groups.setdefault(tuple(change), []).append(
            {"b_id": cid, "b_now": now, **{f"b_{k}": v for k, v in change.items()}})
    refused: set[int] = set()
    for columns, params in groups.items():
        stmt = _fill_statement(columns)
        identity = any(col.endswith("_index") for col in columns)
        if not identity:
            session.execute(stmt, params)
            continue
        try:
            with session.begin_nested():
                session.execute(stmt, params)
        except IntegrityError:
            for p in params:  # one by one: only the record whose identifier is taken stays as it was
                try:
                    with session.begin_nested():
                        session.execute(stmt, [p])
                except IntegrityError:
                    refused.add(p["b_id"])  # type: ignore[arg-type]
    return refused


def events(merges: list[Merge], *, actor_staff_id: int | None, job_id: int, now: datetime) -> list[dict[str, Any]]:
    """The "merged" timeline events, one per row (what intake writes, plus the import job)."""
    out = []
    for m in merges:
        summary = f"重复线索已合并（来源：{m.row[SOURCE]}）" + (f"，补充：{'、'.join(m.filled)}" if m.filled else "")
        out.append({"customer_id": m.match.id, "at": now, "kind": "merged", "summary": pii.mask_text(summary)[:300],
                    "actor_staff_id": actor_staff_id,
                    "data": {"channel": writer.CHANNEL, "filled": m.filled, "import_job_id": job_id}})
    return out


def insert_rows(session: Session, table: type, rows: list[dict[str, Any]]) -> None:
    """Plain rows, one executemany (SQLAlchemy batches it into multi-row INSERTs)."""
    if rows:
        session.execute(insert(table), rows)


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Timeline rows; PostgreSQL: one COPY."""
    if not rows:
        return
    if not is_postgres(session):
        insert_rows(session, CustomerEvent, rows)
        return
    raw = session.connection().connection.driver_connection
    value, null = writer.copy_value, writer.NULL
    with raw.cursor() as cur, cur.copy("COPY customer_event (customer_id, at, kind, summary, actor_staff_id, data) "
                                       "FROM STDIN") as copy:
        copy.write("".join([
            f"{r['customer_id']}\t{r['at'].isoformat()}\t{value(r['kind'])}\t{value(r['summary'])}\t"
            f"{null if r['actor_staff_id'] is None else r['actor_staff_id']}\t"
            f"{null if r.get('data') is None else value(json.dumps(r['data'], ensure_ascii=False))}\n"
            for r in rows]).encode(raw.info.encoding))


def write(session: Session, merges: list[Merge], *, actor_staff_id: int | None, job_id: int,
          now: datetime) -> None:
    """Fill the records' blanks and record one "merged" event per row."""
    changes = plan_fills(merges)
    if changes:
        refused = apply_fills(session, changes, now)
        for m in merges:
            if m.match.id in refused:
                m.filled = []
    insert_events(session, events(merges, actor_staff_id=actor_staff_id, job_id=job_id, now=now))


# The filled fields in Chinese, for the problem report.
LABELS = {"phone": "手机号", "id_number": "身份证号", "region": "城市", "demand_amount": "贷款金额",
          "demand_term_months": "期限", "demand_purpose": "用途", "name": "姓名"}
