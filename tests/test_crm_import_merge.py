"""Lead import: a row that is a person already in the database is merged into the existing record
the way intake merges a lead: blanks filled, nothing overwritten, the owner kept."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import pii
from core.settings import reset_settings_cache
from crm import customers
from crm.importer import dedup, merge, service, writer
from crm.models import Customer, CustomerEvent
from tests.factories import make_customer, make_org, make_staff
from tests.import_support import csv_file, valid_id

HEADER = ["姓名", "手机号", "身份证号", "城市", "贷款金额", "期限", "用途"]


@pytest.fixture(autouse=True)
def import_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRM_IMPORT_DIR", str(tmp_path / "imports"))
    reset_settings_cache()
    yield tmp_path / "imports"
    monkeypatch.delenv("SCRM_IMPORT_DIR")
    reset_settings_cache()


def _import(tmp_path, rows, **kwargs):
    return service.import_file(csv_file(tmp_path / "a.csv", rows, header=HEADER), **kwargs)


def _merged_event(session, customer_id: int) -> CustomerEvent:
    return session.scalar(select(CustomerEvent).where(CustomerEvent.customer_id == customer_id,
                                                      CustomerEvent.kind == "merged"))


def test_an_imported_duplicate_fills_the_blanks_of_the_existing_customer(session, tmp_path):
    c = make_customer(session, phone="13800138000", name="老客户")
    result = _import(tmp_path, [["张三", "13800138000", valid_id(7), "上海", "50000", "12", "装修"]])
    assert (result.counts["created"], result.counts["duplicates_existing"]) == (0, 1)
    session.refresh(c)
    assert (c.name, c.region, c.demand_amount, c.demand_term_months, c.demand_purpose) == (
        "老客户", "上海", 5_000_000, 12, "装修")
    assert c.id_number_index == pii.blind_index(pii.ID_NUMBER, valid_id(7))
    assert pii.open_sealed(pii.ID_NUMBER, c.id_number_enc) == valid_id(7) and c.id_number_masked.endswith(
        valid_id(7)[-4:])
    event = _merged_event(session, c.id)
    assert event.data["filled"] == ["id_number", "region", "demand_amount", "demand_term_months", "demand_purpose"]
    assert "补充：id_number、region" in event.summary
    assert "已补充：身份证号、城市、贷款金额、期限、用途" in result.sample[0].message


def test_a_merge_never_overwrites_what_the_customer_has(session, tmp_path):
    c = make_customer(session, phone="13800138000", name="老客户", id_number=valid_id(1), region="北京",
                      demand_amount=100_00)
    _import(tmp_path, [["新名字", "13800138000", "", "上海", "50000", "24", ""]])
    session.refresh(c)
    assert (c.name, c.region, c.demand_amount, c.demand_term_months) == ("老客户", "北京", 100_00, 24)
    assert c.id_number_index == pii.blind_index(pii.ID_NUMBER, valid_id(1))
    assert _merged_event(session, c.id).data["filled"] == ["demand_term_months"]


def test_a_customer_found_by_id_number_gets_the_phone_it_lacks(session, tmp_path):
    found = customers.intake(session, customers.CustomerInput(name="只有身份证", id_number=valid_id(2)),
                             channel="manual").customer
    _import(tmp_path, [["只有身份证", "13700137000", valid_id(2), "", "", "", ""]])
    session.refresh(found)
    assert found.phone_index == pii.blind_index(pii.PHONE, "13700137000") and found.phone_masked == "137****7000"
    assert pii.open_sealed(pii.PHONE, found.phone_enc) == "13700137000"


def test_a_collision_fills_blanks_but_the_owner_stays(session, tmp_path):
    org = make_org(session)
    owner = make_staff(session, department=org["team_a"])
    manager = make_staff(session, role="manager", department=org["company"])
    c = make_customer(session, phone="13800138000", owner=owner)
    result = _import(tmp_path, [["张三", "13800138000", "", "上海", "", "", ""]], created_by=manager.id)
    session.refresh(c)
    assert result.counts["collisions"] == 1
    assert (c.owner_id, c.status, c.region) == (owner.id, "owned", "上海")


def test_an_id_number_that_belongs_to_another_customer_is_not_filled_in(session, tmp_path):
    first = make_customer(session, phone="13800138000", name="甲")
    second = make_customer(session, phone="13900139000", name="乙", id_number=valid_id(3))
    result = _import(tmp_path, [["甲", "13800138000", valid_id(3), "上海", "", "", ""]])
    assert (result.counts["created"], result.counts["duplicates_existing"]) == (0, 1)
    session.refresh(first)
    session.refresh(second)
    # intake would hit the unique index filling the ID number in, and keep both untouched
    assert (first.id_number_index, first.region) == (None, None)
    assert second.phone_index == pii.blind_index(pii.PHONE, "13900139000")
    assert _merged_event(session, first.id).data["filled"] == []


def test_two_rows_of_one_file_fill_the_same_customer_in_file_order(session, tmp_path):
    c = make_customer(session, phone="13800138000", id_number=valid_id(4))
    _import(tmp_path, [["张三", "13800138000", "", "上海", "", "", ""],
                       ["张三", "", valid_id(4), "广州", "80000", "", ""]])
    session.refresh(c)
    assert (c.region, c.demand_amount) == ("上海", 8_000_000)
    filled = [e.data["filled"] for e in session.scalars(
        select(CustomerEvent).where(CustomerEvent.customer_id == c.id, CustomerEvent.kind == "merged")
        .order_by(CustomerEvent.id))]
    assert filled == [["region"], ["demand_amount"]]


def test_reimporting_a_file_fills_nothing_the_first_import_wrote(session, tmp_path):
    rows = [["张三", "13800138000", valid_id(5), "上海", "50000", "12", "装修"]]
    _import(tmp_path, rows)
    c = session.scalar(select(Customer))
    before = c.updated_at
    second = _import(tmp_path, rows)
    session.refresh(c)
    assert second.counts["duplicates_existing"] == 1 and c.updated_at == before
    assert _merged_event(session, c.id).data["filled"] == []


def test_a_fill_the_unique_index_refuses_leaves_that_customer_untouched(session):
    taken = make_customer(session, phone="13800138000", id_number=valid_id(6))
    target = make_customer(session, phone="13900139000")
    other = make_customer(session, phone="13700137000")
    sealed = pii.protect(pii.ID_NUMBER, valid_id(6))  # taken meanwhile by another record
    refused = merge.apply_fills(session, {
        target.id: {"id_number_enc": sealed.ciphertext, "id_number_index": sealed.index,
                    "id_number_masked": sealed.masked, "region": "上海"},
        other.id: {"id_number_enc": pii.protect(pii.ID_NUMBER, valid_id(8)).ciphertext,
                   "id_number_index": pii.blind_index(pii.ID_NUMBER, valid_id(8)), "id_number_masked": "x",
                   "region": "广州"},
    }, target.created_at)
    assert refused == {target.id}
    session.expire_all()
    assert (session.get(Customer, target.id).region, session.get(Customer, target.id).id_number_index) == (None, None)
    assert session.get(Customer, other.id).region == "广州"
    assert session.get(Customer, taken.id).id_number_index == sealed.index


def test_match_for_picks_the_oldest_record_and_names_the_identifier_of_the_other():
    older = dedup.Existing(1, None, "pool", "甲", None)
    newer = dedup.Existing(2, None, "pool", "乙", None)
    row: list[object] = [None] * (writer.NOTE + 1)
    row[writer.PHONE_INDEX], row[writer.ID_INDEX] = "p", "i"
    assert merge.match_for({"p": newer, "i": older}, tuple(row)) == (older, "phone")
    assert merge.match_for({"p": older, "i": newer}, tuple(row)) == (older, "id_number")
    assert merge.match_for({"p": older}, tuple(row)) == (older, None)
