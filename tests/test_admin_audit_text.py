"""The audit log reads as sentences: Chinese verbs and nouns, amounts in yuan, codes as their labels."""

from __future__ import annotations

from admin import audit_text
from core import audit
from tests.factories import make_org, make_staff
from tests.test_admin_support import console_client, log_in


def test_a_change_reads_as_a_sentence_with_yuan_and_labels():
    text = audit_text.sentence("李经理", "customer.update", "customer", "12",
                               {"demand_amount": 18_000_000, "customer_type": "credit", "source": "miniprogram"},
                               {"demand_amount": 20_000_000, "customer_type": "mortgage", "source": "miniprogram"})
    assert text == "李经理 修改了客户资料 客户 #12：需求金额 ¥180,000.00 → ¥200,000.00，客户类型 信用贷 → 房抵贷"


def test_an_unlabelled_action_is_named_by_its_area_and_system_is_chinese():
    text = audit_text.sentence(audit_text.actor_label("system"), "lending.something_new", "loan", "3", None,
                               {"principal_amount": 100_000_00, "annual_rate": "0.18"})
    assert text == "系统 贷款操作 贷款 #3：本金 ¥100,000.00，年利率 18%"
    assert audit_text.action_label("brand_new_area.x") == "其他操作"


def test_the_audit_page_shows_sentences_not_codes(session):
    admin = make_staff(session, role="admin", department=make_org(session)["company"], username="root")
    audit.record(session, "customer.grade", entity_type="customer", entity_id=7, before={"grade": "B"},
                 after={"grade": "A"}, actor=audit.Actor("staff", admin.id, "张三"))
    session.flush()
    client = console_client()
    log_in(client, session, admin)
    page = client.get("/console/audit").text
    assert "张三 修改了客户等级 客户 #7：等级 B → A" in page
    assert "customer.grade" not in page and "&#34;grade&#34;" not in page


def test_a_source_code_and_its_label_are_one_source(session):
    from crm import customer_queries
    from crm.scope import Viewer
    from tests.factories import make_customer

    admin = make_staff(session, role="admin", department=make_org(session)["company"])
    make_customer(session, owner=admin, name="甲", source="miniprogram")
    make_customer(session, owner=admin, name="乙", source="小程序")
    make_customer(session, owner=admin, name="丙", source="抖音")
    viewer = Viewer.of(admin)
    assert customer_queries.distinct_values(session, viewer, "source").count("小程序") == 1
    assert "miniprogram" not in customer_queries.distinct_values(session, viewer, "source")
    found = session.scalars(customer_queries.filtered(session, viewer, customer_queries.CustomerFilter(source="小程序")))
    assert sorted(c.name for c in found) == ["乙", "甲"]


def test_every_timeline_entry_kind_the_code_writes_has_a_chinese_label():
    import re
    from pathlib import Path

    from admin.console.customers import EVENT_KIND_LABELS

    root = Path(__file__).resolve().parent.parent
    kinds: set[str] = set()
    for path in [*root.glob("crm/**/*.py"), *root.glob("lending/**/*.py"), *root.glob("bot/**/*.py"),
                 *root.glob("referral/**/*.py"), *root.glob("miniprogram_api/**/*.py")]:
        kinds |= set(re.findall(r'record_event\(\s*session,\s*[^,]+,\s*"([a-z_.]+)"', path.read_text()))
    assert len(kinds) > 20
    unlabelled = sorted(k for k in kinds if k not in EVENT_KIND_LABELS and k.split(".")[0] not in EVENT_KIND_LABELS)
    assert unlabelled == []


def test_the_collections_actions_of_this_round_read_in_chinese():
    assert audit_text.action_label("telephony.dial") == "经服务器外呼了客户"
    assert audit_text.action_label("agency.portal.login_failed") == "委外机构工作台登录失败"
    assert audit_text.action_label("collections.case.set_tier") == "手动调整了催收案件的风险等级"
    assert audit_text.action_label("agency.portal.denied") == "委外机构操作"  # by its area
