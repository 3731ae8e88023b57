"""One record per person: intake, dedup on every identifier, collisions, reads, edits, blacklist."""

import threading

import pytest
from sqlalchemy import func, select

from core.db import unit_of_work
from crm import customers, scope
from crm.customers import CustomerInput
from crm.exceptions import CustomerNotFound, ValidationFailed
from crm.models import Collision, Customer, CustomerStatus, Notification
from tests.factories import make_customer, make_org, make_staff

ID_NUMBER = "11010519491231002X"


def count(session):
    return session.scalar(select(func.count()).select_from(Customer))


def test_a_new_lead_lands_in_the_default_pool(session):
    result = customers.intake(session, CustomerInput(name="李四", phone="13800001111"), channel="manual")
    c = result.customer
    assert result.created and c.status == CustomerStatus.POOL and c.pool_id is not None
    assert c.phone_masked == "138****1111" and c.name_initials == "ls"
    assert [e.kind for e in customers.timeline(session, c.id)] == ["created"]


@pytest.mark.parametrize("second", [
    CustomerInput(phone="+86 138 0000 1111"),
    CustomerInput(id_number=ID_NUMBER.lower()),
    CustomerInput(wecom_external_userid="wmEXT1"),
    CustomerInput(wechat_unionid="oUNION1"),
])
def test_the_same_person_by_any_identifier_is_one_record(session, second):
    first = customers.intake(session, CustomerInput(name="王五", phone="13800001111", id_number=ID_NUMBER,
                                                    wecom_external_userid="wmEXT1", wechat_unionid="oUNION1"),
                             channel="manual").customer
    again = customers.intake(session, second, channel="import")
    assert not again.created and again.customer.id == first.id
    assert count(session) == 1


def test_a_merge_fills_missing_identifiers_without_overwriting(session):
    first = customers.intake(session, CustomerInput(phone="13800001111"), channel="manual").customer
    merged = customers.intake(session, CustomerInput(name="赵六", phone="13800001111", wechat_openid="oOPEN",
                                                     region="上海"), channel="miniprogram")
    assert set(merged.filled) >= {"wechat_openid", "region", "name"}
    assert (first.name, first.wechat_openid, first.region) == ("赵六", "oOPEN", "上海")


def test_collision_keeps_the_owner_and_tells_both_sides(session):
    org = make_org(session)
    owner = make_staff(session, department=org["team_a"])
    other = make_staff(session, department=org["team_b"])
    c = make_customer(session, phone="13800002222", owner=owner)
    result = customers.intake(session, CustomerInput(phone="13800002222", source="名单"), channel="import",
                              claimant_id=other.id)
    assert result.collision is not None and result.customer.owner_id == owner.id
    told = set(session.scalars(select(Notification.staff_id).where(Notification.kind == "collision")))
    assert told == {owner.id, other.id}
    assert session.scalar(select(func.count()).select_from(Collision).where(Collision.customer_id == c.id)) == 1


def test_the_owner_entering_their_own_customer_is_not_a_collision(session):
    owner = make_staff(session)
    make_customer(session, phone="13800003333", owner=owner)
    result = customers.intake(session, CustomerInput(phone="13800003333"), channel="manual", claimant_id=owner.id)
    assert result.collision is None


@pytest.mark.parametrize("data,field", [
    (CustomerInput(phone="12345"), "phone"),
    (CustomerInput(id_number="110105194912310021"), "id_number"),
    (CustomerInput(name="x"), "phone"),
    (CustomerInput(phone="13800004444", demand_amount=-1), "demand_amount"),
    (CustomerInput(phone="13800004444", customer_type="spaceship"), "customer_type"),
    (CustomerInput(phone="13800004444", grade="Z"), "grade"),
])
def test_bad_input_is_refused_and_writes_nothing(session, data, field):
    with pytest.raises(ValidationFailed) as info:
        customers.intake(session, data, channel="manual")
    assert info.value.details.get("field") == field
    assert count(session) == 0


def test_lookup_by_phone_name_and_initials_is_scoped(session):
    org = make_org(session)
    me = make_staff(session, department=org["team_a"])
    other = make_staff(session, department=org["team_b"])
    mine = make_customer(session, name="张小明", phone="13800005555", owner=me)
    make_customer(session, name="张大明", phone="13800006666", owner=other)
    viewer = scope.Viewer.of(me)
    assert [c.id for c in customers.lookup(session, viewer, "138 0000 5555")] == [mine.id]
    assert [c.id for c in customers.lookup(session, viewer, "zxm")] == [mine.id]
    assert [c.id for c in customers.lookup(session, viewer, "明")] == [mine.id]
    assert customers.lookup(session, viewer, "13800006666") == []


def test_reading_another_salespersons_customer_is_not_found(session):
    org = make_org(session)
    me, other = make_staff(session, department=org["team_a"]), make_staff(session, department=org["team_b"])
    theirs = make_customer(session, owner=other)
    with pytest.raises(CustomerNotFound):
        customers.get_customer(session, scope.Viewer.of(me), theirs.id)


def test_reveal_phone_is_audited(session):
    from core import audit

    me = make_staff(session)
    c = make_customer(session, phone="13800007777", owner=me)
    assert customers.reveal_phone(session, scope.Viewer.of(me), c.id, "回访") == "13800007777"
    assert audit.search(session, action="pii.reveal", entity_type="customer")[0].entity_id == str(c.id)


def test_profile_edit_is_audited_with_masked_phone(session):
    from core import audit

    me = make_staff(session)
    c = make_customer(session, phone="13800008888", owner=me)
    customers.update_profile(session, scope.Viewer.of(me), c.id, {"phone": "13900009999", "region": "杭州"})
    [entry] = audit.search(session, action="customer.update")
    assert entry.before["phone"] == "138****8888" and entry.after["phone"] == "139****9999"


def test_changing_to_another_customers_phone_is_refused(session):
    me = make_staff(session)
    a = make_customer(session, phone="13800001234", owner=me)
    make_customer(session, phone="13800004321", owner=me)
    with pytest.raises(ValidationFailed):
        customers.update_profile(session, scope.Viewer.of(me), a.id, {"phone": "13800004321"})


def test_blacklist_takes_the_customer_out_of_everyones_hands(session):
    me = make_staff(session, role="manager")
    c = make_customer(session, owner=me)
    customers.blacklist(session, scope.Viewer.of(me), c.id, "欺诈")
    assert (c.status, c.owner_id, c.blacklist_reason) == ("blacklist", None, "欺诈")
    with pytest.raises(Exception) as info:
        customers.ensure_not_blacklisted(c)
    assert "欺诈" in str(info.value)


def test_blacklist_needs_a_reason(session):
    me = make_staff(session, role="manager")
    c = make_customer(session, owner=me)
    with pytest.raises(ValidationFailed):
        customers.blacklist(session, scope.Viewer.of(me), c.id, "  ")
    assert c.status == "owned"


def test_concurrent_intakes_of_one_person_make_one_record(committed):
    """Two channels deliver the same phone at once: the unique blind index decides."""
    barrier = threading.Barrier(2)
    results, errors = [], []

    def intake():
        try:
            with unit_of_work() as s:
                barrier.wait(timeout=10)
                results.append(customers.intake(s, CustomerInput(phone="13700001111"), channel="api").created)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=intake) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with committed() as s:
        assert count(s) == 1
    assert sorted(results) == [False, True]


def test_a_customer_taken_in_without_a_type_is_unknown(session):
    from crm.models import CustomerType
    from tests.factories import make_customer

    assert make_customer(session, name="无类型").customer_type == CustomerType.UNKNOWN
