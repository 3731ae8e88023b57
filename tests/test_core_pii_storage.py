"""PII at rest: no plaintext phone or ID number anywhere in the database; rotation re-encrypts it."""

import base64
import os

from click.testing import CliRunner
from sqlalchemy import select

from core import pii
from core.cli import main
from core.db import Base, unit_of_work
from core.settings import reset_settings_cache
from crm.models import Staff
from tests.factories import make_customer, make_staff

PHONE = "13912345678"


def dump_database(session) -> str:
    """Every value of every table as text, like a dump would hold."""
    chunks = []
    for table in Base.metadata.sorted_tables:
        for row in session.execute(select(table)):
            chunks.append(" ".join(str(v) for v in row))
    return "\n".join(chunks)


def test_a_database_dump_holds_no_plaintext_phone(session):
    make_staff(session, mobile=PHONE)
    session.flush()
    dump = dump_database(session)
    assert PHONE not in dump
    assert "139****5678" in dump  # the masked form is what displays use


def test_lookup_by_blind_index(session):
    from crm.org_service import find_by_mobile

    staff = make_staff(session, mobile=PHONE)
    assert find_by_mobile(session, "+86 139 1234 5678").id == staff.id


def test_rotate_command_re_encrypts_every_value(committed, monkeypatch):
    with unit_of_work() as s:
        staff_id = make_staff(s, mobile=PHONE).id
        sealed_profile_values(s)
    old_keys = os.environ["SCRM_PII_KEYS"]
    monkeypatch.setenv("SCRM_PII_KEYS", old_keys + ",t2:" + base64.b64encode(b"\x09" * 32).decode())
    monkeypatch.setenv("SCRM_PII_ACTIVE_KEY_ID", "t2")
    reset_settings_cache()
    pii.reset_keyring_cache()
    try:
        result = CliRunner().invoke(main, ["pii", "rotate", "--batch-size", "1"])
        assert result.exit_code == 0, result.output
        assert '"staff.mobile_enc": 1' in result.output
        # tables keyed by customer_id, and by (customer_id, field_id), page through their keys too
        assert '"customer_qualification.sealed": 2' in result.output
        assert '"customer_field_value.sealed_value": 2' in result.output
        with committed() as s:
            token = s.scalar(select(Staff.mobile_enc).where(Staff.id == staff_id))
            assert pii.key_id_of(token) == "t2"
            assert pii.open_sealed(pii.PHONE, token) == PHONE
        again = CliRunner().invoke(main, ["pii", "rotate"])
        assert '"staff.mobile_enc": 0' in again.output
    finally:
        monkeypatch.undo()
        reset_settings_cache()
        pii.reset_keyring_cache()


def sealed_profile_values(session) -> None:
    """Two customers with a sealed qualification and a sensitive custom-field value each."""
    from crm import custom_fields, qualification
    from crm.scope import Viewer

    manager = Viewer.of(make_staff(session, role="manager", data_scope="all"))
    custom_fields.create_field(session, manager, {"key": "spouse", "label": "配偶", "field_type": "text",
                                                  "sensitive": True})
    for n in (1, 2):
        customer = make_customer(session, owner=make_staff(session), phone=f"1381234000{n}")
        qualification.update(session, manager, customer.id, {"employer": f"单位{n}"})
        custom_fields.set_values(session, manager, customer.id, {"spouse": f"配偶{n}"})


def test_sqlite_file_holds_no_plaintext(committed):
    """The bytes on disk (embedded default), not just the rows, are free of the plaintext."""
    with unit_of_work() as s:
        make_staff(s, mobile=PHONE)
        is_sqlite = s.get_bind().dialect.name == "sqlite"
    if not is_sqlite:
        with committed() as s:
            assert PHONE not in dump_database(s)
        return
    with committed() as s:
        path = s.get_bind().url.database
    for file in (path, path + "-wal"):
        if os.path.exists(file):
            with open(file, "rb") as fh:
                assert PHONE.encode() not in fh.read()
