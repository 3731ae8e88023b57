"""Lead import with real commits (PostgreSQL: the writer thread, the look-ahead on a connection of its
own, COPY into the tables, and a customer created by another channel between the look-ahead and
the insert). SQLite runs the same imports inline."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core import pii
from core.db import unit_of_work
from core.settings import reset_settings_cache
from crm import customers
from crm.importer import service
from crm.models import Customer, CustomerEvent, OwnerChange
from tests.conftest import IS_POSTGRES, postgres_only
from tests.import_support import csv_file, valid_id


@pytest.fixture(autouse=True)
def import_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRM_IMPORT_DIR", str(tmp_path / "imports"))
    reset_settings_cache()
    yield tmp_path / "imports"
    monkeypatch.delenv("SCRM_IMPORT_DIR")
    reset_settings_cache()


def _intake(phone: str, **fields) -> int:
    with unit_of_work() as s:
        return customers.intake(s, customers.CustomerInput(phone=phone, **fields), channel="manual").customer.id


def _count(model) -> int:
    with unit_of_work() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_an_import_with_real_commits_matches_creates_and_merges(committed, tmp_path, monkeypatch):
    existing = _intake("13800138000", name="老客户")
    looked_ahead = []
    real = service._Run._look_ahead

    def spy(self, pending):
        looked_ahead.append(len(pending.fresh))
        return real(self, pending)

    monkeypatch.setattr(service._Run, "_look_ahead", spy)
    rows = [["老客户", "13800138000", valid_id(1)], ["新客户", "13900139000", ""], ["重复", "13900139000", ""],
            ["新客户2", "", valid_id(2)], ["坏", "123", ""]]
    result = service.import_file(csv_file(tmp_path / "a.csv", rows, header=["姓名", "手机号", "身份证号"]),
                                 batch_size=2)
    c = result.counts
    assert (result.status, c["created"], c["duplicates_existing"], c["duplicates_in_file"], c["errors"]) == (
        "done", 2, 1, 1, 1)
    assert bool(looked_ahead) == IS_POSTGRES  # the look-ahead needs connections of its own
    with unit_of_work() as s:
        old = s.get(Customer, existing)
        assert old.id_number_index == pii.blind_index(pii.ID_NUMBER, valid_id(1))  # its blank was filled
        new = s.scalar(select(Customer).where(Customer.phone_index == pii.blind_index(pii.PHONE, "13900139000")))
        assert pii.open_sealed(pii.PHONE, new.phone_enc) == "13900139000" and new.name_initials == "xkh"
    assert (_count(Customer), _count(OwnerChange), _count(CustomerEvent)) == (3, 3, 4)  # 3 created + 1 merged


@postgres_only  # the look-ahead needs a connection per unit of work (SQLite imports inline)
def test_a_customer_created_after_the_look_ahead_is_merged_not_duplicated(committed, tmp_path, monkeypatch):
    real = service._Run._look_ahead
    created_meanwhile = []

    def then_someone_else_creates_it(self, pending):
        looked = real(self, pending)
        created_meanwhile.append(_intake("13700137000", name="别处刚录入"))
        return looked

    monkeypatch.setattr(service._Run, "_look_ahead", then_someone_else_creates_it)
    rows = [["张三", "13700137000"], ["李四", "13600136000"]]
    result = service.import_file(csv_file(tmp_path / "a.csv", rows, header=["姓名", "手机号"]))
    assert created_meanwhile, "the look-ahead ran"
    assert (result.status, result.counts["created"], result.counts["duplicates_existing"]) == ("done", 1, 1)
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Customer).where(
            Customer.phone_index == pii.blind_index(pii.PHONE, "13700137000"))) == 1
        assert s.scalar(select(CustomerEvent.kind).where(CustomerEvent.customer_id == created_meanwhile[0],
                                                         CustomerEvent.kind == "merged")) == "merged"
    assert _count(Customer) == 2
