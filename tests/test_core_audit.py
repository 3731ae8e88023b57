import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from core import audit, pii
from core.audit import AuditLog
from tests.factories import make_staff


def test_record_masks_pii_in_values(session):
    entry = audit.record(session, "customer.update", entity_type="customer", entity_id=7,
                         before={"phone": "13812345678"}, after={"note": "id 11010519491231002X"})
    assert entry.before == {"phone": "138****5678"}
    assert entry.after == {"note": "id 110105********002X"}


def test_orm_refuses_to_change_an_entry(session):
    entry = audit.record(session, "x.y")
    entry.action = "rewritten"
    with pytest.raises(RuntimeError):
        session.flush()
    session.rollback()


@pytest.mark.parametrize("statement", [
    update(AuditLog).values(action="rewritten"),
    delete(AuditLog),
])
def test_database_refuses_update_and_delete(session, statement):
    audit.record(session, "x.y")
    session.commit()
    with pytest.raises(DBAPIError):
        with session.begin_nested():
            session.execute(statement)
    assert session.scalar(text("SELECT count(*) FROM audit_log WHERE action = 'x.y'")) == 1


def test_reveal_is_logged_with_the_actor(session):
    staff = make_staff(session, mobile="13812345678")
    actor = audit.Actor("staff", 99, "张经理")
    plain = audit.reveal(session, pii.PHONE, staff.mobile_enc, entity_type="staff", entity_id=staff.id,
                         reason="核对身份", actor=actor)
    assert plain == "13812345678"
    [entry] = audit.search(session, action="pii.reveal")
    assert (entry.actor_id, entry.entity_id, entry.after) == (99, str(staff.id), {"field": "phone"})


def test_search_filters(session):
    audit.record(session, "staff.create", entity_type="staff", entity_id=1)
    audit.record(session, "staff.update", entity_type="staff", entity_id=2)
    audit.record(session, "department.create", entity_type="department", entity_id=1)
    assert {e.action for e in audit.search(session, action="staff.")} == {"staff.create", "staff.update"}
    assert [e.entity_id for e in audit.search(session, entity_type="staff", entity_id="2")] == ["2"]
