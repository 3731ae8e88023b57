"""Acceptance: after the demo data and a few everyday actions, no phone or ID number is stored in the clear.

The plaintexts are recovered from the vault (the test holds the keys) and searched for in every
value of every table, and on SQLite in the database file's bytes too.
"""

import json
import os

from sqlalchemy import select

from core import pii
from core.db import unit_of_work
from crm import demo
from crm.models import Customer, CustomerQualification, Staff
from tests.test_core_pii_storage import dump_database


def plaintexts(session) -> set[str]:
    values = set()
    for phone_enc, id_enc in session.execute(select(Customer.phone_enc, Customer.id_number_enc)):
        if phone_enc:
            values.add(pii.open_sealed(pii.PHONE, phone_enc))
        if id_enc:
            values.add(pii.open_sealed(pii.ID_NUMBER, id_enc))
    for (mobile_enc,) in session.execute(select(Staff.mobile_enc)):
        if mobile_enc:
            values.add(pii.open_sealed(pii.PHONE, mobile_enc))
    for (sealed,) in session.execute(select(CustomerQualification.sealed)):  # the qualification's employer
        if sealed:
            values.add(json.loads(pii.open_sealed(pii.QUALIFICATION, sealed))["employer"])
    return values


def test_demo_data_holds_no_plaintext_phone_or_id(session, task_runner):
    demo.seed(session)
    session.flush()
    task_runner.drain()
    secrets = plaintexts(session)
    assert len(secrets) > 60  # the demo's customers and staff
    dump = dump_database(session)
    leaked = sorted(s for s in secrets if s in dump)
    assert leaked == []


def test_sqlite_file_of_the_demo_holds_no_plaintext(committed):
    with unit_of_work() as s:
        demo.seed(s)
    with committed() as s:
        secrets = plaintexts(s)
        path = s.get_bind().url.database if s.get_bind().dialect.name == "sqlite" else None
    if path is None:  # PostgreSQL: the row dump test above covers it
        return
    blob = b""
    for file in (path, path + "-wal"):
        if os.path.exists(file):
            with open(file, "rb") as fh:
                blob += fh.read()
    assert [s for s in secrets if s.encode() in blob] == []
