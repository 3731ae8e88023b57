"""Allocation rules: by bucket and tier to groups by seniority, balanced, previewed before they apply; a case
moves with its bucket; a case without progress for N days goes to another collector; scripts with variables."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from core.money import format_yuan
from lending.servicing import cob
from postloan import allocation, cases, rules, scripts
from postloan.exceptions import RuleInvalid, ScriptInvalid
from postloan.models import AllocationRule, CollectionCase
from tests.factories import make_staff
from tests.lending_flow_support import V
from tests.servicing_support import days, make_loan, on

DUE = date(2026, 12, 23)
D = DUE + days(10)


def _setup(session):
    w, first = make_loan(session)
    _, second = make_loan(session)
    dept = w.manager.department
    juniors = [make_staff(session, role="collector", department=dept, data_scope="own", display_name=f"初级{n}")
               for n in range(2)]
    senior = make_staff(session, role="collector", department=dept, data_scope="own", display_name="资深")
    boss = V(w.manager)
    junior_group = rules.save_group(session, boss, name="M1 初级组", seniority=1)
    senior_group = rules.save_group(session, boss, name="M2+ 资深组", seniority=3)
    for s in juniors:
        rules.set_member(session, boss, s.id, junior_group.id)
    rules.set_member(session, boss, senior.id, senior_group.id)
    rules.save_rule(session, boss, name="长账龄或高风险", priority=10, buckets=["M2", "M3", "M3+"],
                    group_id=senior_group.id)
    rules.save_rule(session, boss, name="高风险", priority=20, risk_tiers="high", group_id=senior_group.id)
    rules.save_rule(session, boss, name="M1", priority=30, buckets="M1", group_id=junior_group.id,
                    reassign_after_days=3)
    return w, [first, second], juniors, senior


def _open(session):
    session.expire_all()
    return list(session.scalars(select(CollectionCase).where(CollectionCase.status == "open").order_by(CollectionCase.id)))


def test_rules_give_short_low_risk_cases_to_juniors_balanced_and_long_ones_move_to_seniors(session):
    w, loans, juniors, senior = _setup(session)
    on(D)
    cob.run_date(D)
    opened = _open(session)
    assert sorted(c.collector_staff_id for c in opened) == sorted(j.id for j in juniors)  # M1: one each
    # a case moves with its bucket: at 31 days overdue (M2) it goes to the senior group
    for n in range(1, 22):
        on(D + days(n))
        cob.run_date(D + days(n))
    moved = _open(session)
    assert {c.bucket for c in moved} == {"M2"}
    assert {c.collector_staff_id for c in moved} == {senior.id}


def test_a_case_without_progress_goes_to_another_collector_after_the_rules_days(session):
    w, loans, juniors, _ = _setup(session)
    on(D)
    cob.run_date(D)
    before = {c.id: c.collector_staff_id for c in _open(session)}
    keep = next(iter(before))  # this one gets a promise: it stays
    holder = next(j for j in juniors if j.id == before[keep])
    on(D + days(1))
    cases.record_promise(session, keep, viewer=V(holder), promised_date=D + days(20), promised_amount=10_000)
    for n in (2, 3, 4):
        on(D + days(n))
        cob.run_date(D + days(n))
    after = {c.id: c.collector_staff_id for c in _open(session)}
    assert after[keep] == before[keep]
    other = next(i for i in before if i != keep)
    assert after[other] != before[other] and after[other] in {j.id for j in juniors}
    notes = [h.note for h in cases.history_of(session, session.get(CollectionCase, other))]
    assert any("无承诺、无还款" in (n or "") for n in notes)


def test_the_preview_counts_per_collector_and_applying_gives_exactly_that(session):
    w, loans, juniors, senior = _setup(session)
    on(D)
    cob.run_date(D)
    # re-balancing everything by a new rule: high risk first (none here), M1 to the seniors now
    rule = session.scalar(select(AllocationRule).where(AllocationRule.name == "M1"))
    rules.save_rule(session, V(w.manager), rule_id=rule.id, name="M1", priority=30, buckets="M1",
                    group_id=session.scalar(select(AllocationRule.group_id).where(AllocationRule.name == "高风险")))
    the_plan = allocation.plan(session, scope="all")
    rows = {r.staff_id: r for r in allocation.preview(session, the_plan)}
    assert (rows[senior.id].current, rows[senior.id].new, rows[senior.id].after) == (1 - 1, 2, 2)
    assert all(rows[j.id].after == 0 and rows[j.id].lose == 1 for j in juniors)
    assert session.scalar(select(CollectionCase.collector_staff_id).limit(1)) != senior.id  # nothing written yet
    assert allocation.apply(session, the_plan) == 2
    assert {c.collector_staff_id for c in _open(session)} == {senior.id}


def test_bad_rules_and_scripts_are_refused_and_change_nothing(session):
    w, _ = make_loan(session)
    boss = V(w.manager)
    group = rules.save_group(session, boss, name="组", seniority=1)
    for kw, field in (({"buckets": "M9"}, "buckets"), ({"min_amount": 500, "max_amount": 100}, "max_amount"),
                      ({"risk_tiers": ["extreme"]}, "risk_tiers"), ({"reassign_after_days": 0}, "reassign_after_days")):
        with pytest.raises(RuleInvalid) as exc:
            rules.save_rule(session, boss, name="坏规则", group_id=group.id, **kw)
        assert exc.value.details["field"] == field
    with pytest.raises(RuleInvalid):
        rules.save_rule(session, V(w.sales), name="越权", group_id=group.id)
    assert session.scalar(select(AllocationRule.id)) is None
    with pytest.raises(ScriptInvalid, match="未知变量"):
        scripts.save_script(session, boss, name="M1", body="您好 {name}，您逾期 {days} 天")


def test_the_case_shows_the_most_specific_script_with_its_variables(session):
    w, loans, juniors, _ = _setup(session)
    boss = V(w.manager)
    scripts.save_script(session, boss, name="通用", body="您好 {name}")
    scripts.save_script(session, boss, name="M1", bucket="M1",
                        body="{name}，您已逾期 {days_overdue} 天，应还 {amount_due}，下一还款日 {next_date}。")
    on(D)
    cob.run_date(D)
    case = _open(session)[0]
    script, text = scripts.render_for(session, case)
    assert script.name == "M1"
    assert text == f"李先生/女士，您已逾期 10 天，应还 {format_yuan(case.overdue_amount)}，下一还款日 2027-01-23。"


def test_the_rules_page_previews_applies_and_refuses_bad_input(session):
    from tests.test_admin_support import console_client, log_in

    w, _, (j1, j2), senior = _setup(session)
    on(D)
    cob.run_date(D)
    client = console_client()
    csrf = log_in(client, session, w.manager)
    assert client.post("/console/collections/rules/members", data={"csrf_token": csrf, "staff_id": str(j2.id),
                                                                    "group_id": ""}).status_code == 303
    page = client.get("/console/collections/rules?preview=all")
    assert page.status_code == 200
    for text in ("分配预览", "将分配", "初级0", "资深", "M1 初级组", "按预览分配"):
        assert text in page.text, text
    bad = client.post("/console/collections/rules", data={"csrf_token": csrf, "name": "坏", "group_id": "",
                                                           "min_amount": "9", "max_amount": "1"})
    assert bad.status_code == 422 and "请选择催收组" in bad.text
    assert "将分配 <strong>1</strong> 个案件" in page.text
    assert client.post("/console/collections/rules/apply", data={"csrf_token": csrf, "scope": "all"}).status_code == 303
    assert {c.collector_staff_id for c in _open(session)} == {j1.id}
    script = client.post("/console/collections/scripts", data={"csrf_token": csrf, "name": "M1", "bucket": "M1",
                                                               "body": "{name} 您好，{oops}"})
    assert script.status_code == 422 and "{oops}" in script.text
    warning = client.post("/console/collections/rules/warnings", data={
        "csrf_token": csrf, "name": "违约", "expression": "broken_promises >=", "raise_to": "high"})
    assert warning.status_code == 422 and "语法错误" in warning.text
    collector = console_client()
    log_in(collector, session, j1)
    assert collector.get("/console/collections/rules").status_code == 403


def test_the_analysis_counts_contact_promise_kept_and_recovery_and_exports(session):
    from core import exports  # noqa: F401 - the export is the shared writer's
    from postloan import analysis
    from tests.servicing_support import pay
    from tests.test_admin_support import console_client, log_in

    w, loans, juniors, _ = _setup(session)
    on(D)
    cob.run_date(D)
    first, second = _open(session)
    holder = next(j for j in juniors if j.id == first.collector_staff_id)
    cases.record_outcome(session, first.id, viewer=V(holder), outcome="promise", promised_date=D + days(1),
                         promised_amount=first.overdue_amount)
    other = next(j for j in juniors if j.id == second.collector_staff_id)
    cases.record_outcome(session, second.id, viewer=V(other), outcome="unreachable")
    loan = session.get(type(loans[0]), first.loan_id)
    session.refresh(loan)
    pay(session, w, loan, first.overdue_amount)
    rows = {r.key: r for r in analysis.by_collector(session, D - days(1), D)}
    a, b = rows[holder.id], rows[other.id]
    assert (a.cases, a.contacted, a.promised, a.kept, a.decided) == (1, 1, 1, 1, 1)
    assert a.recovered == first.overdue_amount and a.recovery_rate == 1
    assert (b.cases, b.contacted, b.promised, b.recovered, b.contact_rate) == (1, 0, 0, 0, 0)
    assert b.still_overdue > 0 and b.recovery_rate == 0
    assert [r.label for r in analysis.by_bucket(session, D - days(1), D)] == ["M1"]
    from core import clock
    from crm.models import CustomerQualification
    still = session.get(type(loans[0]), second.loan_id)  # the unreachable borrower's loan: still overdue
    session.add(CustomerQualification(customer_id=still.customer_id, industry="建筑业", updated_at=clock.now()))
    session.flush()
    by_industry = {r.label: r for r in analysis.overdue_by(session, "industry")}
    assert (by_industry["建筑业"].loans, by_industry["建筑业"].overdue) == (1, 1)
    assert sum(r.loans for r in by_industry.values()) == sum(r.loans for r in analysis.overdue_by(session, "region"))
    from decimal import Decimal

    from postloan.agency import service as agencies
    from postloan.telephony.models import TelephonyCall
    agency = agencies.create_agency(session, V(w.manager), name="华东催收服务", commission_rate=Decimal("0.15"))
    agencies.assign(session, V(w.manager), case_id=second.id, agency_id=agency.id)
    for result, seconds in (("answered", 95), ("no_answer", 0), ("busy", 0)):
        session.add(TelephonyCall(out_call_no=f"T-{result}", staff_id=other.id, customer_id=still.customer_id,
                                  phone_masked="138****0000", status="finished", result=result,
                                  duration_seconds=seconds, created_at=clock.now()))
    session.flush()
    (out,) = analysis.by_agency(session, D - days(1), D)
    assert (out.label, out.cases, out.recovered) == ("华东催收服务", 1, 0) and out.still_overdue > 0
    (calls,) = analysis.calls_by_collector(session, D - days(1), D)
    assert (calls.label, calls.calls, calls.answered, calls.talk_seconds) == (other.display_name, 3, 1, 95)
    client = console_client()
    log_in(client, session, w.manager)
    page = client.get(f"/console/collections/analysis?from={D - days(1)}&to={D}")
    assert page.status_code == 200 and "100.0%" in page.text and holder.display_name in page.text
    assert "逾期与回收（按行业）" in page.text and "建筑业" in page.text
    assert "华东催收服务" in page.text and "33.3%" in page.text  # the agency's row; 1 of 3 calls answered
    xlsx = client.get(f"/console/collections/analysis.xlsx?from={D - days(1)}&to={D}")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert client.get("/console/collections/analysis?from=2027-02-01&to=2027-01-01").status_code == 422
