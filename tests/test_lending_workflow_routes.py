"""Conditional transitions (流转条件) and CC recipients (抄送) of the workflow: the engine's routing by amount
and product, the CC notifications, the designer's refusals, and running applications keeping their version."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.errors import PermissionDenied
from crm.models import Notification
from lending import applications
from lending.application_exceptions import InvalidWorkflow
from lending.models import WorkflowDefinition, WorkflowNode
from lending.workflow import definitions
from lending.workflow.definitions import DEFAULT_NODES, NodeSpec, RouteSpec
from tests.factories import make_staff
from tests.lending_flow_support import AMOUNT, V, advance_to, count, make_world, node, satisfy, start
from tests.lending_product_factories import make_product
from tests.test_admin_support import console_client, log_in

LIMIT = 6_000_000  # ¥60,000.00 (the test product lends ¥10,000 – ¥100,000)


def _with(**changes_by_code):
    return [NodeSpec(**{**s.__dict__, **changes_by_code.get(s.code, {})}) for s in DEFAULT_NODES]


def _pass_first_review(session, w, app):
    """Drive ``app`` to 初审 and approve it (as risk); returns the node code it lands on."""
    advance_to(session, w, app, "first_review")
    satisfy(session, app, V(w.risk))
    applications.approve(session, app.id, viewer=V(w.risk))
    session.refresh(app)
    return node(session, app).code


def _second_customer(session, w):
    from tests.factories import make_customer

    return make_customer(session, owner=w.sales, name="王五")


def test_routing_by_amount_takes_both_sides(session):
    w = make_world(session)
    definitions.save_definition(session, _with(first_review={"routes": (
        RouteSpec("second_review", "gt", LIMIT), RouteSpec("signing"))}))
    big = start(session, w, amount=LIMIT + 1)
    assert _pass_first_review(session, w, big) == "second_review"
    other = _second_customer(session, w)
    small = applications.start_application(session, other.id, w.version_id, LIMIT, 12, viewer=V(w.sales))
    assert _pass_first_review(session, w, small) == "signing"  # exactly the limit: not above, the 其余情况 rule


def test_routing_by_product_takes_both_sides_and_no_match_falls_to_the_next_node(session):
    w = make_world(session)
    house = make_product(session, name="房抵贷")
    definitions.save_definition(session, _with(first_review={"routes": (RouteSpec("signing", product_id=house.id),)}))
    on_house = applications.start_application(session, w.customer.id, house.current_version_id, AMOUNT, 12,
                                              viewer=V(w.sales))
    assert _pass_first_review(session, w, on_house) == "signing"
    on_other = start(session, w)
    assert _pass_first_review(session, w, on_other) == "second_review"  # no condition met: the next node


def test_amount_and_product_together_must_both_hold(session):
    make_world(session)
    house = make_product(session)
    definitions.save_definition(session, _with(intake={"routes": (
        RouteSpec("signing", "ge", LIMIT, house.id),)}))
    nodes = definitions.nodes_of(session, definitions.active_definition(session).id)
    from lending.workflow.machine import ApplicationMachine

    m = ApplicationMachine(nodes)
    intake = nodes[0]
    assert m.fire("intake", intake.id, "approve", amount_fen=LIMIT, product_id=house.id).to_node.code == "signing"
    assert m.fire("intake", intake.id, "approve", amount_fen=LIMIT - 1, product_id=house.id).to_node.code \
        == "first_review"
    assert m.fire("intake", intake.id, "approve", amount_fen=LIMIT, product_id=house.id + 1).to_node.code \
        == "first_review"
    with pytest.raises(Exception, match="不能跳过"):  # the routed node is the only one approval may lead to
        m.fire("intake", intake.id, "approve", amount_fen=1, product_id=house.id, target_code="signing")


def test_a_running_application_keeps_its_version_when_conditions_are_added(session):
    w = make_world(session)
    old = start(session, w, amount=LIMIT + 1_000_000)
    definitions.save_definition(session, _with(first_review={"routes": (RouteSpec("signing", "gt", LIMIT),)}))
    assert old.definition_id != definitions.active_definition(session).id
    assert _pass_first_review(session, w, old) == "second_review"  # version 1 had no condition
    new = applications.start_application(session, _second_customer(session, w).id, w.version_id, LIMIT + 1_000_000, 12,
                                         viewer=V(w.sales))
    assert _pass_first_review(session, w, new) == "signing"


def test_cc_recipients_are_told_once_per_visit_and_cannot_approve(session):
    w = make_world(session)
    boss = make_staff(session, role="supervisor", display_name="赵主管", data_scope="all")
    definitions.save_definition(session, _with(first_review={"cc_roles": ("finance",), "cc_staff_ids": (boss.id,)},
                                               second_review={"cc_roles": ("risk",)}))
    app = advance_to(session, w, start(session, w), "first_review")

    def cc(staff):
        return count(session, Notification, Notification.kind == "lending_cc", Notification.staff_id == staff.id)

    assert (cc(boss), cc(w.finance), cc(w.sales), cc(w.manager)) == (1, 1, 0, 0)
    note = session.scalar(select(Notification).where(Notification.kind == "lending_cc",
                                                     Notification.staff_id == boss.id))
    assert "初审" in note.title and "仅供知悉" in note.body
    with pytest.raises(PermissionDenied):  # a copy is no approval right
        applications.approve(session, app.id, viewer=V(boss))
    satisfy(session, app, V(w.risk))
    applications.approve(session, app.id, viewer=V(w.risk))
    assert (cc(boss), cc(w.finance)) == (1, 1)  # leaving 初审 and entering 复审 tells them nothing more
    # 复审 copies risk, who is also its responsible role: the 待处理 message only, no second copy
    assert cc(w.risk) == 0
    assert count(session, Notification, Notification.kind == "lending_node", Notification.staff_id == w.risk.id) == 2


@pytest.mark.parametrize(("routes", "message"), [
    ((RouteSpec("nowhere"),), "不存在"),
    ((RouteSpec("intake", "gt", LIMIT),), "无限循环"),
    ((RouteSpec("first_review"),), "无限循环"),
    ((RouteSpec("disbursement"),), "不能跳过签约"),
    ((RouteSpec("signing", "gt", None),), "同时"),
    ((RouteSpec("signing", "gt", 0),), "大于 0"),
    ((RouteSpec("signing"), RouteSpec("second_review", "gt", LIMIT)), "永远不会生效"),
    ((RouteSpec("signing", product_id=999_999),), "产品不存在"),
])
def test_bad_conditions_are_refused_and_nothing_is_saved(session, routes, message):
    definitions.ensure_active(session)
    with pytest.raises(InvalidWorkflow, match=message):
        definitions.save_definition(session, _with(first_review={"routes": routes}))
    assert session.scalar(select(WorkflowDefinition.version).where(WorkflowDefinition.active.is_(True))) == 1
    assert count(session, WorkflowDefinition) == 1


def test_conditions_only_on_intake_and_review_nodes(session):
    with pytest.raises(InvalidWorkflow, match="只有进件和审批节点"):
        definitions.save_definition(session, _with(signing={"routes": (RouteSpec("disbursement"),)}))


def test_unknown_cc_is_refused(session):
    with pytest.raises(InvalidWorkflow, match="抄送角色不正确"):
        definitions.save_definition(session, _with(first_review={"cc_roles": ("boss",)}))
    with pytest.raises(InvalidWorkflow, match="抄送对象未找到"):
        definitions.parse_cc(session, "经理、不存在的人")
    s = make_staff(session, display_name="钱会计")
    assert definitions.parse_cc(session, "经理,钱会计 risk") == (["manager", "risk"], [s.id])


def test_the_same_conditions_add_no_version_and_are_stored_as_typed(session):
    specs = _with(first_review={"routes": (RouteSpec("second_review", "gt", LIMIT), RouteSpec("signing")),
                                "cc_roles": ("manager",)})
    first = definitions.save_definition(session, specs)
    assert definitions.save_definition(session, specs).id == first.id
    stored = session.scalar(select(WorkflowNode).where(WorkflowNode.definition_id == first.id,
                                                       WorkflowNode.code == "first_review"))
    assert stored.routes == [{"to": "second_review", "amount_op": "gt", "amount_fen": LIMIT, "product_id": None},
                             {"to": "signing", "amount_op": None, "amount_fen": None, "product_id": None}]
    assert stored.cc_roles == ["manager"]


# --- the console designer -------------------------------------------------------------------------------


def _form(session, client, csrf, **extra):
    """The designer's form as the page fills it (the active version), plus ``extra`` fields."""
    nodes = definitions.nodes_of(session, definitions.ensure_active(session).id)
    data = {"csrf_token": csrf, "rows": str(len(nodes)), "route_rows": "3", "distinct_reviewers": "1"}
    for i, n in enumerate(nodes):
        data.update({f"position_{i}": str(n.position), f"code_{i}": n.code, f"name_{i}": n.name, f"kind_{i}": n.kind,
                     f"role_{i}": n.responsible_role or "", f"sla_{i}": str(n.sla_hours or ""),
                     f"fields_{i}": "、".join(n.required_fields or []), f"docs_{i}": "、".join(n.required_documents or [])})
    data.update(extra)
    return data


def test_the_designer_saves_a_condition_typed_in_yuan_and_a_cc(session):
    w = make_world(session)
    client = console_client()
    csrf = log_in(client, session, w.manager)
    page = client.get("/console/lending/workflow")
    assert page.status_code == 200 and "流转条件" in page.text and "抄送" in page.text and "风控" in page.text
    response = client.post("/console/lending/workflow", data=_form(
        session, client, csrf, rfrom_0="first_review", rop_0="gt", ramount_0="20万", rto_0="second_review",
        rfrom_1="first_review", rto_1="signing", cc_1="经理、财务"))
    assert response.status_code == 303, response.text
    active = definitions.active_definition(session)
    first = next(n for n in definitions.nodes_of(session, active.id) if n.code == "first_review")
    assert active.version == 2 and first.routes[0]["amount_fen"] == 20_000_000 and first.routes[1]["to"] == "signing"
    assert first.cc_roles == ["manager", "finance"]
    shown = client.get("/console/lending/workflow").text
    assert "申请金额大于 ¥200,000.00 → 复审" in shown and "其余情况 → 签约" in shown and "抄送：经理、财务" in shown


@pytest.mark.parametrize(("extra", "message"), [
    ({"rfrom_0": "first_review", "rop_0": "gt", "ramount_0": "二十万", "rto_0": "signing"}, "金额格式不正确"),
    ({"rfrom_0": "first_review", "rop_0": "gt", "ramount_0": "1.001", "rto_0": "signing"}, "不足一分"),
    ({"rfrom_0": "first_review", "rop_0": "", "ramount_0": "1000", "rto_0": "signing"}, "同时选择比较方式"),
    ({"rfrom_0": "first_review", "rto_0": "gone"}, "不存在"),
    ({"rfrom_0": "second_review", "rto_0": "first_review"}, "无限循环"),
    ({"rfrom_0": "first_review", "rto_0": ""}, "须选择"),
    ({"cc_1": "不存在的人"}, "抄送对象未找到"),
])
def test_bad_designer_input_is_refused_with_nothing_saved(session, extra, message):
    w = make_world(session)
    client = console_client()
    csrf = log_in(client, session, w.manager)
    client.get("/console/lending/workflow")
    response = client.post("/console/lending/workflow", data=_form(session, client, csrf, **extra))
    assert response.status_code == 422 and message in response.text, response.text[-2000:]
    assert count(session, WorkflowDefinition) == 1
    if "ramount_0" in extra:  # the form comes back as typed
        assert f'value="{extra["ramount_0"]}"' in response.text


def test_a_new_node_may_leave_its_code_blank(session):
    w = make_world(session)
    client = console_client()
    csrf = log_in(client, session, w.manager)
    client.get("/console/lending/workflow")
    data = _form(session, client, csrf, rows="7", position_6="3", code_6="", name_6="终审", kind_6="review",
                 role_6="manager", position_2="4", position_3="5", position_4="6", position_5="7")
    assert client.post("/console/lending/workflow", data=data).status_code == 303
    nodes = definitions.nodes_of(session, definitions.active_definition(session).id)
    added = next(n for n in nodes if n.name == "终审")
    assert added.code.startswith("node_") and [n.name for n in nodes][:4] == ["进件", "初审", "终审", "复审"]


def test_the_application_page_marks_a_node_the_conditions_passed_by(session):
    w = make_world(session)
    definitions.save_definition(session, _with(first_review={"routes": (RouteSpec("signing", "le", LIMIT),)}))
    app = start(session, w)
    assert _pass_first_review(session, w, app) == "signing"
    client = console_client()
    log_in(client, session, w.manager)
    page = client.get(f"/console/lending/applications/{app.id}").text
    assert '<li class="skipped" title="按流转条件未经过此节点">复审（未经过）</li>' in page
    assert '<li class="done">初审</li>' in page and '<li class="current">签约</li>' in page
