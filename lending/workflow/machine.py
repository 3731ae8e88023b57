"""The application's state machine: which event may move an application from where to where.

The state is the pair (status, current node) stored on the application row; the machine is built from
the nodes of the definition the application started on. Rules:

- ``approve`` moves to the NEXT node only (a requested target that is not the next node is refused:
  no skipping); approving the last node is refused (servicing is the end of the road). The next node is
  the target of the node's first condition (流转条件) the application's requested amount and product
  meet, else the node after it in order: deterministic, the same application always takes the same road.
- ``reject`` and ``withdraw`` close the application from any open node, and need a reason.
- a closed application (rejected, withdrawn, disbursed) accepts no event.

Pure: no database access; :mod:`lending.workflow.engine` persists the move and records it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from lending.application_exceptions import ApplicationClosed, ReasonRequired, TransitionRefused
from lending.models import OPEN_STATUSES, ApplicationStatus, NodeKind, WorkflowNode
from lending.workflow.definitions import routes_of

__all__ = ["EVENT_LABELS", "STATUS_OF_KIND", "ApplicationMachine", "Event", "Move"]


class Event(StrEnum):
    START = "start"
    APPROVE = "approve"
    REJECT = "reject"
    WITHDRAW = "withdraw"


EVENT_LABELS = {"start": "发起申请", "approve": "通过", "reject": "拒绝", "withdraw": "撤回"}

STATUS_OF_KIND: dict[str, ApplicationStatus] = {
    NodeKind.INTAKE: ApplicationStatus.INTAKE,
    NodeKind.REVIEW: ApplicationStatus.REVIEWING,
    NodeKind.SIGNING: ApplicationStatus.APPROVED,
    NodeKind.DISBURSEMENT: ApplicationStatus.SIGNED,
    NodeKind.SERVICING: ApplicationStatus.DISBURSED,
}


@dataclass(frozen=True)
class Move:
    event: Event
    from_node: WorkflowNode | None
    to_node: WorkflowNode | None  # None: the application closes
    from_status: str | None
    to_status: str


class ApplicationMachine:
    def __init__(self, nodes: Sequence[WorkflowNode]) -> None:
        if not nodes:
            raise ValueError("a workflow needs nodes")
        self.nodes = sorted(nodes, key=lambda n: n.position)
        self._index = {n.id: i for i, n in enumerate(self.nodes)}
        self._by_code = {n.code: n for n in self.nodes}

    def start(self) -> Move:
        first = self.nodes[0]
        return Move(Event.START, None, first, None, STATUS_OF_KIND[first.kind])

    def next_node(self, node_id: int, *, amount_fen: int | None = None,
                  product_id: int | None = None) -> WorkflowNode | None:
        """Where approving ``node_id`` leads for an application of this amount (fen) and product."""
        i = self._index[node_id]
        for route in routes_of(self.nodes[i]):
            target = self._by_code.get(route.to)
            if target is not None and route.matches(amount_fen, product_id):
                return target
        return self.nodes[i + 1] if i + 1 < len(self.nodes) else None

    def node(self, node_id: int) -> WorkflowNode:
        return self.nodes[self._index[node_id]]

    def fire(self, status: str, node_id: int | None, event: Event | str, *, reason: str | None = None,
             target_code: str | None = None, amount_fen: int | None = None, product_id: int | None = None) -> Move:
        event = Event(event)
        if status not in OPEN_STATUSES or node_id is None or node_id not in self._index:
            raise ApplicationClosed()
        current = self.node(node_id)
        if event is Event.APPROVE:
            target = self.next_node(node_id, amount_fen=amount_fen, product_id=product_id)
            if target is None:
                raise TransitionRefused("已是最后一个节点")
            if target_code is not None and target_code != target.code:
                raise TransitionRefused(f"不能跳过节点：「{current.name}」之后只能进入「{target.name}」")
            return Move(event, current, target, status, STATUS_OF_KIND[target.kind])
        if event in (Event.REJECT, Event.WITHDRAW):
            if not (reason or "").strip():
                raise ReasonRequired("请填写拒绝原因" if event is Event.REJECT else "请填写撤回原因", field="reason")
            closed = ApplicationStatus.REJECTED if event is Event.REJECT else ApplicationStatus.WITHDRAWN
            return Move(event, current, None, status, closed)
        raise TransitionRefused(f"未知的操作：{event}")
