"""The lead funnel's per-customer rollup (``analytics_customer_funnel``), kept by the database itself.

Each source below is one kind of step event: a row of ``table`` for which ``when`` holds says that the customer
``customer`` reached ``step`` at ``at``. A trigger per source (after INSERT, and after UPDATE of ``update_of``
where a row can become an event later: a visit marked arrived, a contract signed) moves the customer's
``<step>_at`` earlier, creating the row on the customer's first event with ``lead_at``, a copy of the customer's
``created_at`` (kept by a trigger on the customer: the cohort funnel finds a period's leads in the rollup by its
index, without reading the whole rollup). Triggers, not ORM events: every write
path fills the rollup — the services, a plain Core insert, a bulk ``INSERT … SELECT``.

:func:`rebuild` recomputes the whole table from the events (the migration's backfill; the analytics bench after
it loads its events with the triggers off). The expressions use ``{r}`` for the event row: ``NEW`` in a
trigger, the table's alias in the rebuild.

Deleting an event does not move a step back (events are not deleted by the product; a deleted customer's row
goes with it, ON DELETE CASCADE).
"""

# ruff: noqa: S608 - the SQL text formats in only this module's own table, column and expression constants

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

__all__ = ["SOURCES", "STEPS", "create_triggers", "drop_triggers", "rebuild"]

TABLE = "analytics_customer_funnel"
STEPS = ("contacted", "visited", "applied", "approved", "signed", "disbursed")


@dataclass(frozen=True)
class Source:
    name: str
    table: str
    step: str
    customer: str
    at: str
    when: str = "1 = 1"
    update_of: tuple[str, ...] = ()
    via_application: bool = False  # the rebuild joins the application for the customer (a transition)


_APP_CUSTOMER = "(SELECT a.customer_id FROM lending_application a WHERE a.id = {r}.application_id)"

SOURCES = (
    Source("followup", "crm_followup", "contacted", "{r}.customer_id", "{r}.created_at"),
    Source("visit", "crm_visit", "visited", "{r}.customer_id", "COALESCE({r}.arrived_at, {r}.updated_at)",
           "{r}.status = 'arrived'", ("status", "arrived_at")),
    Source("application", "lending_application", "applied", "{r}.customer_id", "{r}.created_at"),
    # the workflow records each move; the signing node's approval (合同已签) moves the application to signed
    Source("approval", "lending_application_transition", "approved", _APP_CUSTOMER, "{r}.at",
           "{r}.to_status IN ('approved', 'signed', 'disbursed')", via_application=True),
    Source("signing", "lending_application_transition", "signed", _APP_CUSTOMER, "{r}.at",
           "{r}.to_status IN ('signed', 'disbursed')", via_application=True),
    # a signed contract without that transition: a loan book imported with its contracts
    Source("contract", "lending_contract", "signed", "{r}.customer_id", "{r}.signed_at",
           "{r}.signed_at IS NOT NULL", ("signed_at",)),
    Source("loan", "lending_loan", "disbursed", "{r}.customer_id", "{r}.created_at"),
)


def _new(expr: str) -> str:
    return expr.format(r="NEW")


def create_triggers(conn: Any) -> None:
    """Create the triggers on ``conn`` (a SQLAlchemy connection: ``op.get_bind()`` in a migration)."""
    postgres = conn.dialect.name == "postgresql"
    for s in SOURCES:
        col = f"{s.step}_at"
        when = f"({_new(s.when)})"
        if postgres:
            conn.execute(text(f"""
                CREATE OR REPLACE FUNCTION analytics_funnel_{s.name}() RETURNS trigger AS $$
                DECLARE c bigint; t timestamptz;
                BEGIN
                    c := {_new(s.customer)};
                    t := {_new(s.at)};
                    IF c IS NOT NULL AND t IS NOT NULL THEN
                        INSERT INTO {TABLE} AS f (customer_id, lead_at, {col})
                        SELECT c, cu.created_at, t FROM customer cu WHERE cu.id = c
                        ON CONFLICT (customer_id) DO UPDATE SET {col} = EXCLUDED.{col}
                        WHERE f.{col} IS NULL OR f.{col} > EXCLUDED.{col};
                    END IF;
                    RETURN NULL;
                END;
                $$ LANGUAGE plpgsql"""))
            for suffix, verb in (("ins", "INSERT"), *((("upd", f"UPDATE OF {', '.join(s.update_of)}"),)
                                                     if s.update_of else ())):
                conn.execute(text(f"""
                    CREATE TRIGGER analytics_funnel_{s.name}_{suffix} AFTER {verb} ON {s.table}
                    FOR EACH ROW WHEN {when} EXECUTE FUNCTION analytics_funnel_{s.name}()"""))
        else:
            customer, at = _new(s.customer), _new(s.at)
            body = f"""
                BEGIN
                    INSERT OR IGNORE INTO {TABLE} (customer_id, lead_at)
                    SELECT id, created_at FROM customer WHERE id = {customer};
                    UPDATE {TABLE} SET {col} = {at}
                    WHERE customer_id = {customer} AND ({col} IS NULL OR {col} > {at});
                END"""
            guard = f"{when} AND ({customer}) IS NOT NULL AND ({at}) IS NOT NULL"
            for suffix, verb in (("ins", "INSERT"), *((("upd", f"UPDATE OF {', '.join(s.update_of)}"),)
                                                     if s.update_of else ())):
                conn.execute(text(f"CREATE TRIGGER analytics_funnel_{s.name}_{suffix} AFTER {verb} ON {s.table} "
                                  f"FOR EACH ROW WHEN {guard} {body}"))


    sync = f"UPDATE {TABLE} SET lead_at = NEW.created_at WHERE customer_id = NEW.id"
    if postgres:
        conn.execute(text(f"""
            CREATE OR REPLACE FUNCTION analytics_funnel_lead() RETURNS trigger AS $$
            BEGIN {sync}; RETURN NULL; END;
            $$ LANGUAGE plpgsql"""))
        conn.execute(text("CREATE TRIGGER analytics_funnel_lead_upd AFTER UPDATE OF created_at ON customer FOR EACH ROW "
                          "WHEN (NEW.created_at IS DISTINCT FROM OLD.created_at) EXECUTE FUNCTION analytics_funnel_lead()"))
    else:
        conn.execute(text("CREATE TRIGGER analytics_funnel_lead_upd AFTER UPDATE OF created_at ON customer FOR EACH ROW "
                          f"WHEN NEW.created_at IS NOT OLD.created_at BEGIN {sync}; END"))


def drop_triggers(conn: Any) -> None:
    postgres = conn.dialect.name == "postgresql"
    conn.execute(text("DROP TRIGGER IF EXISTS analytics_funnel_lead_upd" + (" ON customer" if postgres else "")))
    if postgres:
        conn.execute(text("DROP FUNCTION IF EXISTS analytics_funnel_lead()"))
    for s in SOURCES:
        for suffix in ("ins", "upd"):
            conn.execute(text(f"DROP TRIGGER IF EXISTS analytics_funnel_{s.name}_{suffix}"
                              + (f" ON {s.table}" if postgres else "")))
        if postgres:
            conn.execute(text(f"DROP FUNCTION IF EXISTS analytics_funnel_{s.name}()"))


def rebuild(conn: Any) -> int:
    """Recompute the whole rollup from the events (one INSERT … SELECT); returns the rows written."""
    null = "CAST(NULL AS TIMESTAMP WITH TIME ZONE)" if conn.dialect.name == "postgresql" else "NULL"
    parts = []
    for s in SOURCES:
        cols = ", ".join(f"MIN({s.at.format(r='r')}) AS {step}_at" if step == s.step else f"{null} AS {step}_at"
                         for step in STEPS)
        customer = "a.customer_id" if s.via_application else s.customer.format(r="r")
        join = " JOIN lending_application a ON a.id = r.application_id" if s.via_application else ""
        parts.append(f"SELECT {customer} AS customer_id, {cols} FROM {s.table} r{join} "
                     f"WHERE {s.when.format(r='r')} AND {s.at.format(r='r')} IS NOT NULL GROUP BY {customer}")
    union = "\nUNION ALL\n".join(parts)
    conn.execute(text(f"DELETE FROM {TABLE}"))
    return conn.execute(text(
        f"INSERT INTO {TABLE} (customer_id, lead_at, {', '.join(f'{s}_at' for s in STEPS)}) "
        f"SELECT e.customer_id, c.created_at, {', '.join(f'MIN(e.{s}_at)' for s in STEPS)} FROM ({union}) e "
        f"JOIN customer c ON c.id = e.customer_id GROUP BY e.customer_id, c.created_at")).rowcount
