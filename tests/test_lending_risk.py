"""Rule sets (immutable versions, refused at save time) and risk evaluation (outcomes, provider faults, storage)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from core import clock
from core.audit import Actor
from crm import customers
from crm.models import CustomerEvent
from crm.scope import Viewer
from lending.models import RiskEvaluation, RuleSetVersion
from lending.product_exceptions import InvalidRule, InvalidRuleExpression
from lending.risk import rules as rule_sets
from lending.risk.credit import CreditReport, FakeCreditProvider, Person
from lending.risk.evaluate import Applicant, dry_run, evaluate_applicant, evaluations_of
from tests.factories import make_customer, make_staff
from tests.lending_product_factories import id_number, make_product

ID = id_number(date(1990, 6, 15))
RULES = [
    {"name": "黑名单", "expression": "blacklisted", "outcome": "reject", "reason": "客户在黑名单中"},
    {"name": "年龄", "expression": "age < 22 or age > 55", "outcome": "reject", "reason": "年龄不符合要求"},
    {"name": "征信分", "expression": "credit_score < 600", "outcome": "manual_review", "reason": "征信评分偏低"},
    {"name": "负债率", "expression": "debt_ratio > 0.7", "outcome": "warn", "reason": "负债率偏高"},
    {"name": "多头申请", "expression": "recent_applications(30) >= 2", "outcome": "manual_review",
     "reason": "近 30 天多次申请"},
]
LIMIT = "min(income_monthly * 12, 200000_00)"


def good_report(score: int = 720) -> FakeCreditProvider:
    return FakeCreditProvider(reports={ID: CreditReport(provider="fake", score=score, overdue_count=0)})


@pytest.fixture
def setup(session):
    clock.freeze(datetime(2026, 6, 1, 2, tzinfo=UTC))
    product = make_product(session)
    rule_sets.save_rule_set(session, product.id, RULES, credit_limit_expression=LIMIT)
    customer = make_customer(session, id_number=ID, region="广东深圳")
    return product, customer


def evaluate(session, product, customer, provider=None, **applicant):
    fields = {"amount": 5_000_000, "term": 12, "income_monthly": 1_000_000, "debt_ratio": Decimal("0.3")} | applicant
    return evaluate_applicant(session, product_version_id=product.current_version_id, customer_id=customer.id,
                              applicant=Applicant(**fields), credit_provider=provider or good_report())


# --- rule sets ---------------------------------------------------------------------------------------


def test_saving_again_makes_a_new_version_and_keeps_the_old(session):
    product = make_product(session)
    first = rule_sets.save_rule_set(session, product.id, RULES[:1])
    second = rule_sets.save_rule_set(session, product.id, RULES)
    session.expire_all()
    assert (first.version, second.version) == (1, 2)
    assert len(session.get(RuleSetVersion, first.id).rules) == 1
    assert rule_sets.current_rule_version(session, product.id).id == second.id


def test_a_stored_rule_version_refuses_an_update(session):
    version = rule_sets.save_rule_set(session, make_product(session).id, RULES)
    version.rules = []
    with pytest.raises(RuntimeError, match="immutable"):
        session.flush()


def test_an_unknown_fact_is_refused_at_save_time_naming_the_rule(session):
    product = make_product(session)
    bad = RULES[:2] + [{"name": "收入", "expression": "salary < 3000", "outcome": "reject", "reason": "收入低"}]
    with pytest.raises(InvalidRuleExpression) as caught:
        rule_sets.save_rule_set(session, product.id, bad)
    assert "第 3 条规则「收入」" in caught.value.message and "未知的字段「salary」" in caught.value.message
    assert rule_sets.rule_set_of(session, product.id) is None


def test_an_import_in_a_rule_is_refused_at_save_time(session):
    product = make_product(session)
    bad = [{"name": "x", "expression": "__import__('os').system('id') == 0", "outcome": "reject", "reason": "x"}]
    with pytest.raises(InvalidRuleExpression, match="第 1 条规则"):
        rule_sets.save_rule_set(session, product.id, bad)


def test_a_bad_credit_limit_formula_is_refused(session):
    with pytest.raises(InvalidRuleExpression, match="授信额度公式"):
        rule_sets.save_rule_set(session, make_product(session).id, RULES, credit_limit_expression="income_monthly > 1")


@pytest.mark.parametrize(("rule", "text"), [
    ({"name": "", "expression": "age > 1", "outcome": "reject", "reason": "r"}, "规则名称"),
    ({"name": "a", "expression": "age > 1", "outcome": "approve", "reason": "r"}, "处理结果"),
    ({"name": "a", "expression": "age > 1", "outcome": "reject", "reason": ""}, "命中原因"),
])
def test_incomplete_rules_are_refused(session, rule, text):
    with pytest.raises(InvalidRule, match=text):
        rule_sets.save_rule_set(session, make_product(session).id, [rule])


def test_duplicate_rule_names_are_refused(session):
    with pytest.raises(InvalidRule, match="重复"):
        rule_sets.save_rule_set(session, make_product(session).id, [RULES[0], RULES[0]])


# --- evaluation outcomes ---------------------------------------------------------------------------------


def test_a_clean_applicant_passes_with_the_credit_limit(session, setup):
    row = evaluate(session, *setup)
    assert (row.outcome, row.hits, row.provider_status) == ("pass", [], "ok")
    assert row.credit_limit_amount == 12_000_000
    assert row.inputs["age"] == 35


def test_age_is_computed_on_the_business_date(session, setup):
    clock.freeze(datetime(2026, 6, 14, 17, tzinfo=UTC))  # 15 June in Shanghai: the 36th birthday
    assert evaluate(session, *setup).inputs["age"] == 36


def test_a_reject_rule_rejects(session, setup):
    product, customer = setup
    customers.blacklist(session, Viewer.of(make_staff(session, role="admin", data_scope="all")), customer.id, "欺诈")
    row = evaluate(session, product, customer)
    assert row.outcome == "reject"
    assert [h["name"] for h in row.hits] == ["黑名单"]


def test_a_low_score_goes_to_manual_review(session, setup):
    row = evaluate(session, *setup, provider=good_report(score=550))
    assert row.outcome == "manual_review"
    assert row.hits[0]["reason"] == "征信评分偏低"


def test_a_warning_alone_passes_with_a_warning(session, setup):
    row = evaluate(session, *setup, debt_ratio=Decimal("0.8"))
    assert row.outcome == "warn"


def test_the_worst_hit_decides(session, setup):
    product, customer = setup
    row = evaluate(session, product, customer, provider=good_report(score=550), debt_ratio=Decimal("0.9"))
    assert row.outcome == "manual_review"
    assert {h["outcome"] for h in row.hits} == {"manual_review", "warn"}


def test_unknown_income_cannot_pass(session, setup):
    row = evaluate(session, *setup, income_monthly=None)
    assert row.outcome == "manual_review"
    assert row.credit_limit_amount is None
    assert "缺少资料" in row.hits[0]["detail"]


def test_an_amount_above_the_credit_limit_goes_to_manual_review(session, setup):
    row = evaluate(session, *setup, income_monthly=300_000)  # limit 36,000 yuan < 50,000 asked
    assert row.outcome == "manual_review"
    assert row.hits[0]["reason"] == "申请金额超过授信额度"


def test_recent_applications_come_from_the_facts_provider(session, setup):
    product, customer = setup

    class TwoRecent:
        def recent_applications(self, session, customer_id, days, *, exclude_application_id=None):
            return 2 if customer_id == customer.id and days == 30 else 0

    row = evaluate_applicant(session, product_version_id=product.current_version_id, customer_id=customer.id,
                             applicant=Applicant(amount=5_000_000, term=12, income_monthly=1_000_000),
                             credit_provider=good_report(), facts_provider=TwoRecent())
    assert row.outcome == "manual_review"
    assert row.inputs["recent_applications"] == {"30": 2}


def test_the_default_facts_provider_counts_no_applications(session, setup):
    assert evaluate(session, *setup).inputs["recent_applications"] == {"30": 0}


# --- credit provider faults: manual review, never approval ---------------------------------------------


@pytest.mark.parametrize(("mode", "status"), [("timeout", "timeout"), ("fail", "error")])
def test_a_provider_fault_sends_the_case_to_manual_review(session, setup, mode, status):
    row = evaluate(session, *setup, provider=FakeCreditProvider(mode=mode))
    assert row.outcome == "manual_review"
    assert row.provider_status == status


def test_a_provider_timeout_never_passes_even_with_no_rules(session):
    product = make_product(session)
    customer = make_customer(session, id_number=ID)
    row = evaluate(session, product, customer, provider=FakeCreditProvider(mode="timeout"))
    assert row.rule_set_version_id is None
    assert row.outcome == "manual_review"


def test_a_provider_crash_is_manual_review(session, setup):
    class Broken:
        name = "broken"

        def fetch(self, person):
            raise ConnectionResetError("reset")

    row = evaluate(session, *setup, provider=Broken())
    assert (row.outcome, row.provider_status) == ("manual_review", "error")


def test_a_provider_timeout_does_not_soften_a_reject(session, setup):
    product, customer = setup
    customers.blacklist(session, Viewer.of(make_staff(session, role="admin", data_scope="all")), customer.id, "欺诈")
    assert evaluate(session, product, customer, provider=FakeCreditProvider(mode="timeout")).outcome == "reject"


def test_a_product_without_rules_never_passes(session):
    product = make_product(session)
    customer = make_customer(session, id_number=ID)
    row = evaluate(session, product, customer)
    assert (row.outcome, row.provider_status) == ("manual_review", "ok")
    assert row.hits[0]["reason"] == "产品尚未配置风控规则，转人工审核"


def test_no_id_number_means_no_credit_check_and_manual_review(session):
    product = make_product(session)
    customer = make_customer(session)
    row = evaluate(session, product, customer)
    assert (row.outcome, row.provider_status) == ("manual_review", "skipped")


def test_the_fake_provider_is_deterministic_by_id_number():
    person = Person("张三", ID)
    assert FakeCreditProvider().fetch(person) == FakeCreditProvider().fetch(person)
    assert ID not in repr(person)


# --- storage ----------------------------------------------------------------------------------------


def test_the_evaluation_is_stored_without_the_plaintext_id_number(session, setup):
    product, customer = setup
    row = evaluate(session, product, customer)
    session.expire_all()
    stored = session.get(RiskEvaluation, row.id)
    dumped = json.dumps([stored.inputs, stored.hits, stored.provider_detail], ensure_ascii=False)
    assert ID not in dumped and ID[6:14] not in dumped
    assert stored.inputs["id_number_masked"] == customer.id_number_masked
    events = session.scalars(select(CustomerEvent).where(CustomerEvent.kind == "risk.evaluation")).all()
    assert [e.ref_id for e in events] == [str(row.id)]


def test_evaluations_are_readable_newest_first(session, setup):
    product, customer = setup
    first = evaluate(session, product, customer)
    clock.freeze(datetime(2026, 6, 2, 2, tzinfo=UTC))
    second = evaluate(session, product, customer, provider=FakeCreditProvider(mode="timeout"))
    assert [e.id for e in evaluations_of(session, customer_id=customer.id)] == [second.id, first.id]
    assert [e.id for e in evaluations_of(session, product_id=product.id)] == [second.id, first.id]


def test_a_stored_evaluation_refuses_changes(session, setup):
    row = evaluate(session, *setup)
    row.outcome = "pass"
    row.hits = [{"changed": True}]
    with pytest.raises(RuntimeError, match="append-only"):
        session.flush()


# --- dry run (console test form) -----------------------------------------------------------------------


def test_dry_run_shows_hits_and_outcome_and_stores_nothing(session, setup):
    product, _ = setup
    version = rule_sets.current_rule_version(session, product.id)
    result = dry_run(version, {"age": 20, "blacklisted": False, "credit_score": 700, "debt_ratio": Decimal("0.2"),
                               "income_monthly": 500_000, "amount": 1_000_000, "recent_applications": 3})
    assert result.outcome == "reject"
    assert [h.name for h in result.hits] == ["年龄", "多头申请"]
    assert result.credit_limit == 6_000_000
    assert session.scalar(select(RiskEvaluation.id)) is None


def test_dry_run_of_unsaved_rules_checks_them(session):
    with pytest.raises(InvalidRuleExpression):
        dry_run(None, {}, rules=[{"name": "a", "expression": "age.x", "outcome": "reject", "reason": "r"}])


def test_audit_actor_is_optional(session, setup):
    product, _ = setup
    version = rule_sets.save_rule_set(session, product.id, RULES, actor=Actor("staff", None, "测试"))
    assert version.version == 2


def test_two_first_saves_at_once_share_one_rule_set(committed):
    import threading

    from core.db import unit_of_work

    clock.unfreeze()
    with unit_of_work() as s:
        product_id = make_product(s).id
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def save() -> None:
        barrier.wait()
        try:
            with unit_of_work() as s:
                rule_sets.save_rule_set(s, product_id, RULES)
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with unit_of_work() as s:
        rule_set = rule_sets.rule_set_of(s, product_id)
        assert [v.version for v in rule_sets.rule_versions(s, rule_set.id)] == [2, 1]


def test_the_qualification_profile_supplies_what_the_application_does_not_say(session, setup):
    from crm import qualification

    product, customer = setup
    rule_sets.save_rule_set(session, product.id, RULES + [
        {"name": "社保", "expression": "social_insurance_months < 6 and not has_property", "outcome": "manual_review",
         "reason": "社保不足且无房"}], credit_limit_expression=LIMIT)
    staff = make_staff(session, role="admin")
    qualification.update(session, Viewer.of(staff), customer.id, {
        "income_monthly_amount": "8000", "debt_monthly_amount": "6400", "employer": "深圳某某电子厂",
        "social_insurance_months": 3, "property_status": "none"})
    row = evaluate(session, product, customer, income_monthly=None, debt_ratio=None)
    hits = {h["name"] for h in row.hits}
    assert {"社保", "负债率"} <= hits  # 3 months and no home; 6400 / 8000 = 0.8 from the profile
    assert row.credit_limit_amount == 8000_00 * 12  # the limit formula read the profile's income
    dumped = json.dumps(row.inputs, ensure_ascii=False)
    assert "800000" not in dumped and "某某电子厂" not in dumped  # sealed figures stay sealed
    assert row.inputs["income_monthly"] == "资质：5千–1万"


def test_credit_figures_and_industry_from_the_profile_are_risk_facts(session, setup):
    from crm import qualification

    product, customer = setup
    rule_sets.save_rule_set(session, product.id, RULES + [
        {"name": "自报逾期", "expression": "credit_overdue_count >= 3", "outcome": "reject", "reason": "近两年逾期多"},
        {"name": "查询多", "expression": "credit_queries_6m > 6", "outcome": "manual_review", "reason": "查询过多"},
        {"name": "行业", "expression": 'industry in ("娱乐休闲", "房地产")', "outcome": "warn", "reason": "限制行业"},
    ], credit_limit_expression=LIMIT)
    staff = make_staff(session, role="admin")
    qualification.update(session, Viewer.of(staff), customer.id, {
        "credit_overdue_count": 4, "credit_queries_6m": 9, "industry": "娱乐休闲"})
    row = evaluate(session, product, customer)
    assert {h["name"] for h in row.hits} >= {"自报逾期", "查询多", "行业"}
    assert row.outcome == "reject"
    # the sealed counts are kept as a band in the stored inputs, the plain industry as is
    assert row.inputs["credit_overdue_count"] == "资质：3–5 次"
    assert row.inputs["credit_queries_6m"] == "资质：6 次及以上"
    assert row.inputs["industry"] == "娱乐休闲"


def test_the_new_profile_facts_are_offered_by_the_condition_builder():
    from lending.risk.condition_builder import risk_fields
    from lending.risk.expressions import FACTS

    keys = {f.key for f in risk_fields().fields}
    assert {"credit_overdue_count", "credit_queries_6m", "industry"} <= keys <= set(FACTS) | {
        "recent_applications(30)", "recent_applications(90)"}
