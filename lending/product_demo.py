"""Demo funders, products and risk rules (runs once: nothing when the demo funder exists)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from lending import products
from lending.models import Funder
from lending.risk import rules as rule_sets

STANDARD_RULES = [
    {"name": "黑名单", "expression": "blacklisted", "outcome": "reject", "reason": "客户在黑名单中"},
    {"name": "年龄", "expression": "age < 22 or age > 55", "outcome": "reject", "reason": "年龄不在 22–55 周岁之间"},
    {"name": "征信逾期", "expression": "overdue_count >= 3", "outcome": "reject", "reason": "近两年征信逾期 3 次及以上"},
    {"name": "征信评分", "expression": "credit_score < 600", "outcome": "manual_review", "reason": "征信评分低于 600"},
    {"name": "多头申请", "expression": "recent_applications(30) >= 2", "outcome": "manual_review",
     "reason": "近 30 天内已有 2 笔及以上其他申请"},
    {"name": "负债率", "expression": "debt_ratio > 0.7", "outcome": "warn", "reason": "负债率高于 70%"},
]


def seed(session: Session) -> list[str]:
    if session.scalar(select(Funder.id).where(Funder.name == "演示银行")) is not None:
        return []
    bank = products.create_funder(session, name="演示银行", funder_type="bank")
    cfc = products.create_funder(session, name="演示消费金融", funder_type="consumer_finance")
    micro = products.create_funder(session, name="演示小额贷款", funder_type="microloan")
    credit = products.create_product(session, code="DEMO-XY", name="信用贷", funder_id=bank.id, terms=products.ProductTerms(
        min_amount=1_000_000, max_amount=20_000_000, terms_months=[12, 24, 36], repayment_method="equal_installment",
        annual_rate=Decimal("0.108"), penalty_rate=Decimal("0.0005"), min_age=22, max_age=55,
        customer_types=["credit"], min_income_amount=500_000, min_social_insurance_months=12,
        max_debt_ratio=Decimal("0.3"), min_credit_level="minor", max_credit_queries_6m=6,
        excluded_industries=["娱乐休闲", "房地产"]))
    mortgage = products.create_product(session, code="DEMO-FD", name="房抵经营贷", funder_id=bank.id,
                                       terms=products.ProductTerms(
        min_amount=10_000_000, max_amount=200_000_000, terms_months=[12, 24, 36], repayment_method="interest_first",
        annual_rate=Decimal("0.072"), penalty_rate=Decimal("0.0005"), customer_types=["mortgage", "business"],
        property_required=True, min_credit_level="blank"))
    consumer = products.create_product(session, code="DEMO-XF", name="消费分期", funder_id=cfc.id,
                                       terms=products.ProductTerms(
        min_amount=300_000, max_amount=5_000_000, terms_months=[6, 12], repayment_method="equal_principal",
        annual_rate=Decimal("0.15"), service_fee_rate=Decimal("0.001"), penalty_rate=Decimal("0.0005"),
        min_age=20, max_age=50, regions=["上海", "广东", "浙江"], max_credit_overdue_count=2))
    quick = products.create_product(session, code="DEMO-JK", name="应急周转", funder_id=micro.id,
                                    terms=products.ProductTerms(
        min_amount=100_000, max_amount=2_000_000, terms_months=[3, 6], repayment_method="bullet",
        annual_rate=Decimal("0.18"), service_fee_rate=Decimal("0.01"), service_fee_timing="upfront",
        penalty_rate=Decimal("0.0005")))
    limits = {credit.id: "min(income_monthly * 12, 200000_00)", mortgage.id: None,
              consumer.id: "min(income_monthly * 6, 50000_00)", quick.id: "min(income_monthly * 2, 20000_00)"}
    for product_id, limit in limits.items():
        rule_sets.save_rule_set(session, product_id, STANDARD_RULES, credit_limit_expression=limit, note="演示规则")
    return ["演示产品：信用贷、房抵经营贷、消费分期、应急周转（3 个资方，各带风控规则；征信为模拟数据；"
            "前三个产品带资质准入条件：社保、负债率、征信、行业、房产、逾期次数）"]
