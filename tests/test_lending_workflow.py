"""The workflow definition as data: validation, versions, and the pure state machine."""

from __future__ import annotations

import pytest

from lending.application_exceptions import ApplicationClosed, InvalidWorkflow, ReasonRequired, TransitionRefused
from lending.models import WorkflowDefinition
from lending.workflow import definitions
from lending.workflow.definitions import DEFAULT_NODES, NodeSpec
from lending.workflow.machine import ApplicationMachine
from tests.factories import make_staff
from tests.lending_flow_support import count


def _with(**changes_by_code):
    return [NodeSpec(**{**s.__dict__, **changes_by_code.get(s.code, {})}) for s in DEFAULT_NODES]


def test_the_default_workflow_is_created_once_as_version_one(session):
    first = definitions.ensure_active(session)
    assert definitions.ensure_active(session).id == first.id
    assert first.version == 1 and count(session, WorkflowDefinition) == 1


def test_saving_renamed_nodes_creates_a_new_active_version(session):
    old = definitions.ensure_active(session)
    new = definitions.save_definition(session, _with(first_review={"name": "风控初审", "sla_hours": 8}))
    session.refresh(old)
    assert (new.version, new.active, old.active) == (2, True, False)
    assert definitions.nodes_of(session, new.id)[1].name == "风控初审"
    assert definitions.nodes_of(session, old.id)[1].name == "初审"


def test_saving_the_same_nodes_adds_no_version(session):
    definitions.ensure_active(session)
    definitions.save_definition(session, list(DEFAULT_NODES))
    assert count(session, WorkflowDefinition) == 1


@pytest.mark.parametrize(("specs", "message"), [
    ([s for s in DEFAULT_NODES if s.code != "signing"], "签约"),
    ([DEFAULT_NODES[1], DEFAULT_NODES[0], *DEFAULT_NODES[2:]], "节点顺序"),
    (_with(intake={"required_fields": ("salary",)}), "必填字段未知"),
    (_with(intake={"responsible_role": "boss"}), "负责角色不正确"),
    (_with(intake={"code": "进件"}), "编码"),
    (_with(intake={"sla_hours": 0}), "时限"),
    ([*DEFAULT_NODES, DEFAULT_NODES[1]], "编码重复"),
])
def test_an_unworkable_definition_is_refused_with_the_reason(session, specs, message):
    with pytest.raises(InvalidWorkflow, match=message):
        definitions.save_definition(session, specs)


def test_a_node_may_name_a_person(session):
    person = make_staff(session, role="risk")
    new = definitions.save_definition(session, _with(second_review={"responsible_staff_id": person.id}))
    assert definitions.nodes_of(session, new.id)[2].responsible_staff_id == person.id


def test_the_machine_moves_one_node_at_a_time_and_closes_with_a_reason(session):
    d = definitions.ensure_active(session)
    nodes = definitions.nodes_of(session, d.id)
    m = ApplicationMachine(nodes)
    assert m.start().to_node.code == "intake"
    move = m.fire("intake", nodes[0].id, "approve")
    assert (move.to_node.code, move.to_status) == ("first_review", "reviewing")
    with pytest.raises(TransitionRefused):
        m.fire("intake", nodes[0].id, "approve", target_code="signing")
    with pytest.raises(ReasonRequired):
        m.fire("reviewing", nodes[1].id, "reject", reason=" ")
    assert m.fire("reviewing", nodes[1].id, "withdraw", reason="不要了").to_status == "withdrawn"
    with pytest.raises(ApplicationClosed):
        m.fire("rejected", None, "approve")
    with pytest.raises(TransitionRefused):
        m.fire("signed", nodes[-1].id, "approve")  # servicing is the end


def test_two_designers_saving_at_once_both_get_a_version(committed):
    import threading

    from core.db import unit_of_work

    with unit_of_work() as s:
        definitions.ensure_active(s)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def save(name: str) -> None:
        barrier.wait()
        try:
            with unit_of_work() as s:
                definitions.save_definition(s, _with(first_review={"name": name}))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(n,)) for n in ("初审甲", "初审乙")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with unit_of_work() as s:
        versions = definitions.definitions(s)
        assert [v.version for v in versions] == [3, 2, 1] and [v.active for v in versions] == [True, False, False]
