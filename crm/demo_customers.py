"""Demo customers for `scrm seed-demo` (called at the end of crm.demo.seed): about sixty leads in
上海 / 杭州 / 苏州 / 南京 with valid-format mobiles, some with ID numbers carrying a correct GB 11643 check
digit, owned by sales1 / sales2 or waiting in the public pool, with grades, stages and a few follow-ups.

Deterministic (a fixed random seed) and idempotent: nothing happens when any customer exists. Everything goes
through the services (crm.customers.intake, set_stage, crm.followups), so timelines and audit are real.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock, money
from crm import custom_fields, customers, followups, qualification
from crm.models import Customer, CustomField, Staff
from crm.scope import Viewer

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢"
GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
         "秀兰", "霞", "平", "刚", "桂英", "建华", "晓东", "海燕", "志强", "丽华", "文博", "子轩", "雨涵", "浩然", "思远",
         "欣怡", "建国", "国强", "玉兰", "春梅", "宏伟", "晓峰")
# Region -> (resident ID area codes of its districts)
REGIONS = {
    "上海": ("310101", "310104", "310105", "310115"),
    "杭州": ("330102", "330105", "330106", "330108"),
    "苏州": ("320505", "320506", "320508"),
    "南京": ("320102", "320104", "320106"),
}
SOURCES = ("抖音", "百度推广", "转介绍", "小程序", "地推", "电话营销", "企业微信")
# customer type -> (min, max) demand in yuan, typical terms in months, purposes
TYPES = {
    "credit": ((30_000, 300_000), (12, 24, 36), ("装修", "消费周转", "教育支出")),
    "mortgage": ((500_000, 5_000_000), (60, 120, 240), ("经营周转", "置换贷款", "企业扩张")),
    "car": ((50_000, 300_000), (12, 24, 36), ("车辆抵押周转", "购车")),
    "business": ((100_000, 1_000_000), (12, 24, 36), ("进货备货", "发放工资", "设备采购")),
    "other": ((20_000, 100_000), (6, 12), ("临时周转",)),
}
STAGE_PATH = ("new", "contacted", "intent", "visited", "applied", "approved", "signed")
COUNT = 60


def id_check_digit(first17: str) -> str:
    """GB 11643-1999 (ISO 7064 MOD 11-2) check character of an 18-character resident ID number."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return "10X98765432"[total % 11]


def make_id_number(rng: random.Random, area: str) -> str:
    born = date(1965, 1, 1) + timedelta(days=rng.randrange(0, 365 * 35))
    first17 = f"{area}{born:%Y%m%d}{rng.randrange(0, 1000):03d}"
    return first17 + id_check_digit(first17)


def make_phone(rng: random.Random, used: set[str]) -> str:
    while True:
        prefix = rng.choice(("133", "135", "136", "137", "138", "139", "150", "151", "152", "158", "159",
                             "186", "187", "188", "189"))
        phone = f"{prefix}{rng.randrange(0, 10**8):08d}"
        if phone not in used:
            used.add(phone)
            return phone


def _amount_fen(rng: random.Random, low: int, high: int) -> int:
    """A round demand amount (whole thousands of yuan), as fen."""
    return money.yuan_to_fen(rng.randrange(low // 1000, high // 1000 + 1) * 1000)


def seed(session: Session) -> list[str]:
    if session.scalar(select(Customer.id).limit(1)) is not None:
        return []
    owners = {s.username: s for s in session.scalars(select(Staff).where(Staff.username.in_(("sales1", "sales2"))))}
    if len(owners) < 2:
        return []
    rng = random.Random(20250301)
    used: set[str] = set()
    created: list[Customer] = []
    for n in range(COUNT):
        region = rng.choice(tuple(REGIONS))
        ctype = rng.choices(tuple(TYPES), weights=(5, 3, 2, 3, 1))[0]
        (low, high), terms, purposes = TYPES[ctype]
        slot = n % 5  # 0, 1: sales1; 2, 3: sales2; 4: the pool
        owner = owners["sales1"] if slot < 2 else owners["sales2"] if slot < 4 else None
        data = customers.CustomerInput(
            name=rng.choice(SURNAMES) + rng.choice(GIVEN), phone=make_phone(rng, used),
            id_number=make_id_number(rng, rng.choice(REGIONS[region])) if rng.random() < 0.4 else None,
            source=rng.choice(SOURCES), region=region, customer_type=ctype,
            demand_amount=_amount_fen(rng, low, high) if rng.random() < 0.9 else None,
            demand_term_months=rng.choice(terms), demand_purpose=rng.choice(purposes),
            grade=rng.choice(("A", "B", "B", "C", "C", "D", None)),
        )
        result = customers.intake(session, data, channel="demo", owner_id=owner.id if owner else None,
                                  actor_staff_id=owner.id if owner else None)
        customer = result.customer
        created.append(customer)
        if owner is not None:
            stage = STAGE_PATH[min(len(STAGE_PATH) - 1, int(rng.expovariate(0.8)))]
            if stage != "new":
                customers.set_stage(session, customer.id, stage, actor_staff_id=owner.id)
            if rng.random() < 0.15:
                customers.set_stage(session, customer.id, "lost", actor_staff_id=owner.id)
    followups = _followups(session, rng, created, owners)
    profiles = _profiles(session, created)
    masked = next(c.phone_masked for c in created if c.owner_id == owners["sales1"].id)
    pool = sum(1 for c in created if c.owner_id is None)
    return [f"演示客户：{len(created)} 位（王小明、赵小红各约 {COUNT * 2 // 5} 位，公海 {pool} 位），"
            f"跟进 {followups} 条，资质 {profiles} 份；例：手机 {masked}"]


def _profiles(session: Session, created: list[Customer]) -> int:
    """Two custom fields, and a qualification (资质) on every third owned customer; an rng of its own, so
    the customers and follow-ups above stay what they were."""
    rng = random.Random(17)
    credit_rng = random.Random(23)
    system = None  # the demo seed acts as the system
    fields = {f.key for f in custom_fields.definitions(session)}
    if "work_years" not in fields:
        now = clock.now()
        session.add_all([
            CustomField(key="work_years", label="工作年限", field_type="number", options=[], customer_types=[],
                        show_in_list=True, position=1, created_at=now, updated_at=now),
            CustomField(key="house_area", label="房产区域", field_type="choice", options=["市区", "近郊", "远郊"],
                        customer_types=["mortgage"], position=2, created_at=now, updated_at=now)])
        session.flush()
    count = 0
    for customer in created[::3]:
        if customer.owner_id is None:
            continue
        owner = session.get(Staff, customer.owner_id)
        income = rng.choice((4500, 6800, 9000, 12000, 18000, 26000, 40000))
        qualification.update(session, Viewer.of(owner), customer.id, {
            "employment_type": rng.choice(("employee", "employee", "civil_servant", "self_employed", "business_owner")),
            "industry": rng.choice(("制造业", "互联网", "批发零售", "教育", "建筑")),
            "employer": rng.choice(("某科技有限公司", "某贸易商行", "某区教育局", "某建设集团")),
            "income_monthly_amount": str(income), "social_insurance_months": rng.choice((0, 12, 24, 36, 60)),
            "provident_fund_months": rng.choice((0, 6, 24, 48)),
            "property_status": rng.choice(("none", "full", "mortgage")), "car_status": rng.choice(("none", "full", "loan")),
            "debt_monthly_amount": str(income * rng.choice((0, 10, 25, 40)) // 100),
            "credit_level": rng.choice(("good", "good", "good", "blank", "minor")),
            # the credit figures from an rng of their own, so the draws above stay what they were
            "credit_overdue_count": credit_rng.choice((0, 0, 0, 1, 2, 4)),
            "credit_queries_6m": credit_rng.choice((1, 2, 3, 5, 8))})
        values: dict[str, object] = {"work_years": str(rng.randint(1, 20))}
        if customer.customer_type == "mortgage":
            values["house_area"] = rng.choice(("市区", "近郊", "远郊"))
        custom_fields.set_values(session, system, customer.id, values, actor_staff_id=owner.id)
        count += 1
    return count


def _followups(session: Session, rng: random.Random, created: list[Customer], owners: dict[str, Staff]) -> int:
    """A few follow-ups by the owners, with next follow-ups over the coming week."""
    notes = ("电话沟通，客户有资金需求，约下周面谈", "微信发送了产品资料，客户在比较利率", "客户询问提前还款规则",
             "已初步核实收入流水，待补充材料", "客户暂无需求，三个月后回访")
    viewers = {s.id: Viewer.of(s) for s in owners.values()}
    count = 0
    for customer in created:
        if customer.owner_id is None or rng.random() > 0.35:
            continue
        due = clock.now() + timedelta(days=rng.randrange(1, 8), hours=rng.randrange(0, 8))
        followups.log_followup(session, viewers[customer.owner_id], customer.id, kind=rng.choice(("call", "wechat")),
                               content=rng.choice(notes), next_followup_at=due)
        count += 1
    return count


__all__ = ["id_check_digit", "make_id_number", "seed"]
