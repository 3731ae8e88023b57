"""Lead import with assignment: owners are planned before the insert (crm.allocation.plan), each
lead is written once, owned, with its history, timeline, notifications and audit; the same rules
and caps as allocate(); rows prepared in a worker process give the same result as inline."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.audit import AuditLog
from core.settings import reset_settings_cache
from crm import allocation, customers
from crm.importer import service
from crm.models import AllocationCursor, Customer, CustomerEvent, Notification, OwnerChange
from tests.factories import make_org, make_staff
from tests.import_support import csv_file, valid_id


@pytest.fixture(autouse=True)
def import_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRM_IMPORT_DIR", str(tmp_path / "imports"))
    reset_settings_cache()
    yield tmp_path / "imports"
    monkeypatch.delenv("SCRM_IMPORT_DIR")


@pytest.fixture
def org(session):
    return make_org(session)


def rows(n, start=0):
    return [[f"客户{i}", f"1390000{i:04d}"] for i in range(start, start + n)]


def test_assigned_leads_are_written_owned_with_assignment_time_and_protection(session, org, tmp_path):
    a = make_staff(session, department=org["team_a"])
    result = service.import_file(csv_file(tmp_path / "a.csv", rows(2)), assign_mode="round_robin")
    assert result.counts["assigned"] == 2
    found = session.execute(select(Customer.status, Customer.owner_id, Customer.pool_id, Customer.assigned_at,
                                   Customer.protected_until)).all()
    assert [(s, o, p) for s, o, p, _a, _u in found] == [("owned", a.id, None)] * 2
    assert all(at is not None and until is not None and until > at for *_x, at, until in found)


def test_an_assigned_lead_has_one_create_history_row_from_the_pool_to_its_owner(session, org, tmp_path):
    a = make_staff(session, department=org["team_a"])
    service.import_file(csv_file(tmp_path / "a.csv", rows(1)), assign_mode="round_robin")
    history = session.execute(select(OwnerChange.reason, OwnerChange.to_owner_id, OwnerChange.from_pool_id,
                                     OwnerChange.to_pool_id)).all()
    pool_id = session.scalar(select(func.min(OwnerChange.from_pool_id)))
    assert history == [("create", a.id, pool_id, None)] and pool_id is not None


def test_the_timeline_says_who_the_lead_was_given_to(session, org, tmp_path):
    make_staff(session, department=org["team_a"], display_name="王销售")
    service.import_file(csv_file(tmp_path / "a.csv", rows(1)), assign_mode="round_robin")
    events = session.execute(select(CustomerEvent.kind, CustomerEvent.summary)).all()
    assert [k for k, _ in events] == ["created"] and "分配给 王销售" in events[0][1]


def test_each_owner_is_told_once_per_batch_and_the_assignment_is_audited(session, org, tmp_path):
    a = make_staff(session, department=org["team_a"])
    b = make_staff(session, department=org["team_b"])
    service.import_file(csv_file(tmp_path / "a.csv", rows(6)), assign_mode="round_robin", batch_size=3)
    told = session.execute(select(Notification.staff_id, func.count()).where(Notification.kind == "lead.assigned")
                           .group_by(Notification.staff_id)).all()
    assert dict(told) == {a.id: 2, b.id: 2}
    assert session.scalar(select(func.count()).select_from(AuditLog)
                          .where(AuditLog.action == "customer.allocate")) == 2


def test_round_robin_continues_across_batches_and_imports(session, org, tmp_path):
    a = make_staff(session, department=org["team_a"])
    b = make_staff(session, department=org["team_b"])
    service.import_file(csv_file(tmp_path / "a.csv", rows(3)), assign_mode="round_robin", batch_size=2)
    service.import_file(csv_file(tmp_path / "b.csv", rows(1, start=10)), assign_mode="round_robin")
    owners = session.scalars(select(Customer.owner_id).order_by(Customer.id)).all()
    assert owners == [a.id, b.id, a.id, b.id]
    assert session.scalar(select(func.count()).select_from(AllocationCursor)) == 1


def test_a_salesperson_at_capacity_gets_no_imported_lead(session, org, tmp_path):
    make_staff(session, department=org["team_a"], capacity=0)
    b = make_staff(session, department=org["team_b"], capacity=2)
    result = service.import_file(csv_file(tmp_path / "a.csv", rows(3)), assign_mode="round_robin")
    assert result.counts["assigned"] == 2
    found = session.execute(select(Customer.status, Customer.owner_id).order_by(Customer.id)).all()
    assert found == [("owned", b.id), ("owned", b.id), ("pool", None)]


def test_a_lead_left_in_the_pool_is_written_like_an_unassigned_import(session, org, tmp_path):
    make_staff(session, department=org["team_a"], capacity=0)
    service.import_file(csv_file(tmp_path / "a.csv", rows(1)), assign_mode="round_robin")
    customer = session.scalar(select(Customer))
    history = session.execute(select(OwnerChange.to_owner_id, OwnerChange.from_pool_id, OwnerChange.to_pool_id)).all()
    assert (customer.status, customer.assigned_at, customer.protected_until) == ("pool", None, None)
    assert history == [(None, None, customer.pool_id)]


def test_plan_by_region_gives_each_lead_to_staff_of_its_region(session, org):
    sh = make_staff(session, department=org["team_a"], region="上海")
    bj = make_staff(session, department=org["team_b"], region="北京")
    pool_id = customers.default_pool(session).id
    owners = allocation.plan(session, [allocation.LeadFacts("x", "北京"), allocation.LeadFacts("x", "上海"),
                                       allocation.LeadFacts("x", "广州")], pool_id=pool_id, mode="region")
    assert owners == [bj.id, sh.id, None]


def test_rows_prepared_in_a_worker_process_import_like_inline(session, org, tmp_path, monkeypatch):
    monkeypatch.setattr(service, "WORKER_PROCESS_ROWS", 0)
    data = [["张三", "13800138000", valid_id(1)], ["李四", "13800138001", ""], ["重复", "13800138000", ""],
            ["坏", "1234", ""], ["王五", "", valid_id(2)]]
    result = service.import_file(csv_file(tmp_path / "a.csv", data, header=["姓名", "手机号", "身份证号"]),
                                 batch_size=2)
    assert result.status == "done"
    assert {k: result.counts[k] for k in ("processed", "created", "duplicates_in_file", "errors")} == \
        {"processed": 5, "created": 3, "duplicates_in_file": 1, "errors": 1}
    assert [p.row_number for p in result.sample] == [4, 5]
    names = session.scalars(select(Customer.name).order_by(Customer.id)).all()
    assert names == ["张三", "李四", "王五"]


def test_import_by_rules_with_no_matching_rule_says_so_on_the_job(session, org, tmp_path):
    from crm.models import ImportJob

    make_staff(session, department=org["team_a"])
    result = service.import_file(csv_file(tmp_path / "a.csv", rows(3)), assign_mode=service.ASSIGN_BY_RULES)
    assert result.counts["assigned"] == 0
    job = session.scalar(select(ImportJob).order_by(ImportJob.id.desc()))
    assert job.status == "done"
    assert "3 位新客户没有匹配的分配规则" in job.message and "留在公海" in job.message


def test_an_import_that_assigned_everyone_has_no_warning(session, org, tmp_path):
    from crm.models import ImportJob

    make_staff(session, department=org["team_a"])
    service.import_file(csv_file(tmp_path / "a.csv", rows(2)), assign_mode="round_robin")
    assert session.scalar(select(ImportJob).order_by(ImportJob.id.desc())).message is None


def test_a_round_robin_import_short_of_staff_says_how_many_were_left(session, org, tmp_path):
    from crm.models import ImportJob

    make_staff(session, department=org["team_a"], capacity=1)
    service.import_file(csv_file(tmp_path / "a.csv", rows(3)), assign_mode="round_robin")
    message = session.scalar(select(ImportJob).order_by(ImportJob.id.desc())).message
    assert "2 位新客户没有可接收的员工" in message
