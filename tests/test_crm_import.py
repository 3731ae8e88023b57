"""Lead import: normalisation, validation, dedup (in the file and against the database),
collisions, the rows it writes, re-import, assignment, one transaction per batch."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core import pii
from core.settings import reset_settings_cache
from crm.importer import service, writer
from crm.models import (
    Collision,
    Customer,
    CustomerEvent,
    ImportJob,
    Notification,
    OwnerChange,
    Pool,
)
from tests.factories import make_customer, make_org, make_staff
from tests.import_support import csv_file, valid_id, xlsx


@pytest.fixture(autouse=True)
def import_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRM_IMPORT_DIR", str(tmp_path / "imports"))
    reset_settings_cache()
    yield tmp_path / "imports"
    monkeypatch.delenv("SCRM_IMPORT_DIR")
    reset_settings_cache()


def _count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _by_phone(session, phone: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.phone_index == pii.blind_index(pii.PHONE, phone)))


def test_fullwidth_digits_spaces_and_plus86_are_normalised(session, tmp_path):
    path = xlsx(tmp_path / "a.xlsx", [["张三", "１３８ ００１３ ８０００", None], ["李四", "+86 139-0013-9000", None],
                                      ["王五", "008613700137000", None]])
    result = service.import_file(path)
    assert result.counts["created"] == 3
    for phone in ("13800138000", "13900139000", "13700137000"):
        assert _by_phone(session, phone) is not None


def test_created_customer_has_the_rows_intake_writes(session, tmp_path):
    path = xlsx(tmp_path / "a.xlsx", [["张三", "13800138000", valid_id(1), "上海", 50000, "12", "房抵贷", "老客户介绍"]])
    service.import_file(path, source="抖音")
    c = _by_phone(session, "13800138000")
    assert (c.name, c.name_initials, c.region, c.customer_type, c.status, c.stage) == (
        "张三", "zs", "上海", "mortgage", "pool", "new")
    assert c.pool_id == session.scalar(select(Pool.id).where(Pool.is_default.is_(True)))
    assert pii.open_sealed(pii.PHONE, c.phone_enc) == "13800138000" and c.phone_masked == "138****8000"
    assert pii.open_sealed(pii.ID_NUMBER, c.id_number_enc) == valid_id(1)
    assert c.id_number_index == pii.blind_index(pii.ID_NUMBER, valid_id(1))
    assert (c.demand_amount, c.demand_term_months, c.note, c.source) == (5_000_000, 12, "老客户介绍", "抖音")
    change = session.scalar(select(OwnerChange).where(OwnerChange.customer_id == c.id))
    assert (change.reason, change.note, change.to_pool_id, change.to_owner_id) == ("create", "import:抖音", c.pool_id, None)
    event = session.scalar(select(CustomerEvent).where(CustomerEvent.customer_id == c.id))
    assert (event.kind, event.summary, event.data) == ("created", "新客户（来源：抖音）", {"channel": "import"})


def test_bad_rows_are_reported_with_their_row_numbers_and_good_rows_kept(session, tmp_path):
    path = xlsx(tmp_path / "a.xlsx", [["张三", "13800138000"], ["坏号", "12345"], ["李四", "13900139000"],
                                      ["坏证", None, "110105194912310021"]])
    result = service.import_file(path)
    assert result.counts["created"] == 2 and result.counts["errors"] == 2
    problems = {p.row_number: p.message for p in result.sample}
    assert "手机号格式不正确" in problems[3] and "12345" not in problems[3]
    assert "身份证号校验失败" in problems[5]
    assert _by_phone(session, "13900139000") is not None


def test_a_row_without_phone_and_id_is_an_error(session, tmp_path):
    result = service.import_file(xlsx(tmp_path / "a.xlsx", [["张三", None, None, "上海"]]))
    assert result.counts["errors"] == 1
    assert "至少填写一项" in result.sample[0].message


def test_same_phone_twice_in_the_file_the_later_row_is_the_duplicate(session, tmp_path):
    path = xlsx(tmp_path / "a.xlsx", [["张三", "13800138000"], ["李四", "13900139000"], ["张三丰", "138 0013 8000"]])
    result = service.import_file(path)
    assert (result.counts["created"], result.counts["duplicates_in_file"]) == (2, 1)
    dup = next(p for p in result.sample if p.kind == "duplicate_in_file")
    assert dup.row_number == 4 and "第 2 行" in dup.message
    assert _by_phone(session, "13800138000").name == "张三"


def test_same_id_number_twice_in_the_file_is_a_duplicate(session, tmp_path):
    path = xlsx(tmp_path / "a.xlsx", [["张三", "13800138000", valid_id(3)], ["张三", "13900139000", valid_id(3)]])
    result = service.import_file(path)
    assert (result.counts["created"], result.counts["duplicates_in_file"]) == (1, 1)


def test_existing_customer_is_not_created_again(session, tmp_path):
    existing = make_customer(session, phone="13800138000", name="老客户")
    path = xlsx(tmp_path / "a.xlsx", [["张三", "13800138000"], ["李四", "13900139000"]])
    result = service.import_file(path)
    assert (result.counts["created"], result.counts["duplicates_existing"], result.counts["collisions"]) == (1, 1, 0)
    assert _count(session, Customer, Customer.phone_index == pii.blind_index(pii.PHONE, "13800138000")) == 1
    assert session.scalar(select(CustomerEvent.kind).where(CustomerEvent.customer_id == existing.id,
                                                           CustomerEvent.kind == "merged")) == "merged"


def test_existing_customer_matched_by_id_number_is_a_duplicate(session, tmp_path):
    make_customer(session, phone="13800138000", id_number=valid_id(5))
    result = service.import_file(xlsx(tmp_path / "a.xlsx", [["张三", "13700137000", valid_id(5)]]))
    assert (result.counts["created"], result.counts["duplicates_existing"]) == (0, 1)


def test_another_salespersons_customer_is_a_collision_owner_kept_and_both_told(session, tmp_path):
    org = make_org(session)
    owner = make_staff(session, department=org["team_a"], display_name="老销售")
    manager = make_staff(session, role="manager", department=org["branch"], display_name="导入经理")
    customer = make_customer(session, phone="13800138000", owner=owner, name="王老板")
    result = service.import_file(xlsx(tmp_path / "a.xlsx", [["王老板", "13800138000"]]), created_by=manager.id)
    assert result.counts["collisions"] == 1 and result.counts["created"] == 0
    session.refresh(customer)
    assert customer.owner_id == owner.id
    collision = session.scalar(select(Collision).where(Collision.customer_id == customer.id))
    assert (collision.owner_id, collision.claimant_id, collision.channel) == (owner.id, manager.id, "import")
    told = set(session.scalars(select(Notification.staff_id).where(Notification.kind == "collision")))
    assert told == {owner.id, manager.id}
    # The importer learns that a colleague follows the customer, not who, nor the record.
    mine = session.scalar(select(Notification).where(Notification.staff_id == manager.id))
    assert mine.customer_id is None and "老销售" not in mine.body and "王老板" not in mine.body
    line = next(p for p in result.sample if p.kind == "collision")
    assert "老销售" not in line.message and f"#{customer.id}" not in line.message


def test_own_customer_in_the_file_is_a_duplicate_not_a_collision(session, tmp_path):
    org = make_org(session)
    me = make_staff(session, role="supervisor", department=org["team_a"])
    make_customer(session, phone="13800138000", owner=me)
    result = service.import_file(xlsx(tmp_path / "a.xlsx", [["张三", "13800138000"]]), created_by=me.id)
    assert (result.counts["collisions"], result.counts["duplicates_existing"]) == (0, 1)


def test_reimporting_the_same_file_creates_nothing_new(session, tmp_path):
    path = xlsx(tmp_path / "a.xlsx", [["张三", "13800138000"], ["李四", "13900139000"]])
    first = service.import_file(path)
    before = _count(session, Customer)
    second = service.import_file(path)
    assert first.counts["created"] == 2
    assert (second.counts["created"], second.counts["duplicates_existing"]) == (0, 2)
    assert _count(session, Customer) == before
    assert second.previous_job_id == first.job_id
    jobs = session.scalars(select(ImportJob).order_by(ImportJob.id)).all()
    assert jobs[0].sha256 == jobs[1].sha256 and [j.status for j in jobs] == ["done", "done"]


def test_job_counters_add_up_across_batches(session, tmp_path):
    rows = [[f"客户{i}", f"1380000{i:04d}"] for i in range(25)] + [["坏", "1"]] * 5 + [["重", "13800000001"]]
    result = service.import_file(xlsx(tmp_path / "a.xlsx", rows), batch_size=7)
    c = result.counts
    assert (c["processed"], c["created"], c["errors"], c["duplicates_in_file"]) == (31, 25, 5, 1)
    job = session.get(ImportJob, result.job_id)
    assert (job.status, job.processed, job.created, job.total) == ("done", 31, 25, 31)


def test_new_leads_go_to_the_given_pool(session, tmp_path):
    from core import clock

    pool = Pool(name="抖音公海", created_at=clock.now())
    session.add(pool)
    session.flush()
    service.import_file(xlsx(tmp_path / "a.xlsx", [["张三", "13800138000"]]), pool_id=pool.id)
    assert _by_phone(session, "13800138000").pool_id == pool.id


def test_unknown_pool_is_refused_before_anything_is_written(session, tmp_path):
    from crm.exceptions import PoolNotFound

    with pytest.raises(PoolNotFound, match="公海不存在"):
        service.import_file(xlsx(tmp_path / "a.xlsx", [["张三", "13800138000"]]), pool_id=999999)
    assert _count(session, Customer) == 0 and _count(session, ImportJob) == 0


def test_assign_mode_allocates_the_created_customers(session, tmp_path):
    org = make_org(session)
    a = make_staff(session, department=org["team_a"])
    b = make_staff(session, department=org["team_b"])
    manager = make_staff(session, role="manager", department=org["company"])
    rows = [[f"客户{i}", f"1390000{i:04d}"] for i in range(4)]
    result = service.import_file(xlsx(tmp_path / "a.xlsx", rows), assign_mode="round_robin", created_by=manager.id)
    print("DEBUG", result)
    assert result.counts["assigned"] == 4
    owners = session.scalars(select(Customer.owner_id).where(Customer.status == "owned")).all()
    assert sorted(owners) == sorted([a.id, a.id, b.id, b.id])


def test_unknown_assign_mode_is_refused(session, tmp_path):
    from core.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="未知的分配方式"):
        service.import_file(xlsx(tmp_path / "a.xlsx", [["张三", "13800138000"]]), assign_mode="lottery")


def test_a_failed_batch_leaves_nothing_of_itself_and_keeps_earlier_batches(session, tmp_path, monkeypatch):
    real = writer.insert_new
    calls = []

    def flaky(session_, rows, **kw):
        calls.append(1)
        created = real(session_, rows, **kw)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return created

    monkeypatch.setattr(writer, "insert_new", flaky)
    rows = [[f"客户{i}", f"1370000{i:04d}"] for i in range(6)]
    result = service.import_file(xlsx(tmp_path / "a.xlsx", rows), batch_size=3)
    assert result.status == "failed" and "导入中断" in result.message
    assert _count(session, Customer) == 3
    assert _count(session, CustomerEvent) == 3 and _count(session, OwnerChange) == 3
    assert session.get(ImportJob, result.job_id).created == 3


def test_an_import_is_audit_logged(session, tmp_path):
    from core.audit import AuditLog

    service.import_file(xlsx(tmp_path / "a.xlsx", [["张三", "13800138000"]]))
    entry = session.scalar(select(AuditLog).where(AuditLog.action == "customer.import"))
    assert entry.after["created"] == 1


def test_the_task_runs_a_queued_job_once(session, tmp_path, task_runner):
    path = csv_file(tmp_path / "a.csv", [["张三", "13800138000"]])
    job = service.submit(session, filename="a.csv", file_path=path)
    session.commit()
    assert task_runner.drain() == [service.TASK]
    session.refresh(job)
    assert (job.status, job.created) == ("done", 1)
    assert service.run_job(job.id) is None  # a second delivery does nothing
    assert _count(session, Customer) == 1


def test_sealer_matches_the_pii_vault():
    sealer = writer.Sealer()
    token = sealer.seal(pii.PHONE, "13800138000")
    assert pii.open_sealed(pii.PHONE, token) == "13800138000"
    assert sealer.index(pii.ID_NUMBER, valid_id(2)) == pii.blind_index(pii.ID_NUMBER, valid_id(2))
    assert sealer.seal(pii.PHONE, "13800138000") != token  # a fresh nonce every time


@pytest.mark.parametrize("name", ["张三", "单田芳", "曾国藩", "解缙", "Tom张", "欧阳娜娜", "长孙无忌", "重庆", "朴树",
                                  "李 四", "王2", ""])
def test_fast_name_keys_equal_the_customer_module(name):
    from crm import customers

    assert writer.name_keys(name) == (customers.initials(name), customers.full_pinyin(name))


def test_a_customer_created_between_lookup_and_insert_is_merged_not_duplicated(session, tmp_path, monkeypatch):
    other = make_customer(session, phone="13800138000", name="刚由别处录入")
    real = service._Run._existing
    calls = []

    def blind_first(self, session_, prepared):
        calls.append(1)
        return {} if len(calls) == 1 else real(self, session_, prepared)

    monkeypatch.setattr(service._Run, "_existing", blind_first)
    result = service.import_file(xlsx(tmp_path / "a.xlsx", [["张三", "13800138000"], ["李四", "13900139000"]]))
    assert (result.status, result.counts["created"], result.counts["duplicates_existing"]) == ("done", 1, 1)
    assert _count(session, Customer, Customer.phone_index == other.phone_index) == 1
    assert _by_phone(session, "13900139000") is not None


def test_a_local_file_given_to_the_cli_is_left_in_place(session, tmp_path):
    path = xlsx(tmp_path / "mine.xlsx", [["张三", "13800138000"]])
    service.import_file(path)
    assert path.exists()


def test_a_lead_without_a_type_is_unknown_not_credit(session):
    from crm.importer.rows import parse_type
    from crm.models import CUSTOMER_TYPE_LABELS, CustomerType

    assert parse_type("") == CustomerType.UNKNOWN and parse_type(None) == CustomerType.UNKNOWN
    assert parse_type("未知") == CustomerType.UNKNOWN and parse_type("信用贷") == CustomerType.CREDIT
    assert CUSTOMER_TYPE_LABELS[CustomerType.UNKNOWN] == "未知"
