"""Automation rules (自动化规则) in the staff JSON API: list, create, change, activate and deactivate
(managers and admins, as the console's rules page). crm.automation validates and records every change."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from admin import nav
from admin.api.deps import ERROR_RESPONSES, ApiCaller, require_roles
from admin.schemas import ErrorBody
from admin.schemas_work import AutomationRuleCreate, AutomationRuleRead, AutomationRuleUpdate
from core.errors import ValidationFailed
from core.web import SessionDep
from crm import automation
from crm.models import AutomationRule

router = APIRouter(prefix="/api/v1/automation-rules", tags=["automation"], responses=ERROR_RESPONSES)

_403: dict[int | str, dict[str, Any]] = {403: {"model": ErrorBody, "description": "只有经理或系统管理员可以管理自动化规则"}}
_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "自动化规则不存在"}}
_422: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody, "description": "规则不正确（中文说明），未写入任何内容"}}

RuleEditor = Annotated[ApiCaller, Depends(require_roles(nav.RULE_EDITORS))]


def _read(rule: AutomationRule) -> AutomationRuleRead:
    return AutomationRuleRead(id=rule.id, name=rule.name, trigger=rule.trigger, trigger_value=rule.trigger_value,
                              conditions=list(rule.conditions or []), action=dict(rule.action or {}),
                              active=rule.active, description=automation.describe(rule), created_by=rule.created_by,
                              created_at=rule.created_at, updated_at=rule.updated_at)


@router.get("", response_model=list[AutomationRuleRead], summary="自动化规则（经理；启用的在前）", responses=_403)
def list_rules(session: SessionDep, caller: RuleEditor) -> list[AutomationRuleRead]:
    return [_read(r) for r in automation.list_rules(session)]


@router.post("", response_model=AutomationRuleRead, status_code=201, summary="新建自动化规则（经理）",
             responses={**_403, **_422},
             description="触发条件 + 条件（全部满足）+ 一个动作（创建待办 / 发送通知 / 设置等级）。")
def create_rule(session: SessionDep, caller: RuleEditor, body: AutomationRuleCreate) -> AutomationRuleRead:
    rule = automation.create_rule(session, caller.viewer, name=body.name, trigger=body.trigger,
                                  trigger_value=body.trigger_value,
                                  conditions=[c.model_dump() for c in body.conditions],
                                  action=body.action.as_dict(), active=body.active)
    return _read(rule)


@router.patch("/{rule_id}", response_model=AutomationRuleRead, summary="修改自动化规则（经理；只改传入的字段）",
              responses={**_403, **_404, **_422})
def update_rule(session: SessionDep, caller: RuleEditor, rule_id: int,
                body: AutomationRuleUpdate) -> AutomationRuleRead:
    automation.get_rule(session, rule_id)  # unknown rule: 404 before any validation
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    for key in ("name", "trigger", "conditions", "action"):
        if key in changes and changes[key] is None:
            raise ValidationFailed(f"字段 {key} 不能为空", field=key)
    if body.action is not None:
        changes["action"] = body.action.as_dict()
    return _read(automation.update_rule(session, caller.viewer, rule_id, **changes))


@router.post("/{rule_id}/activate", response_model=AutomationRuleRead, summary="启用自动化规则（经理）",
             responses={**_403, **_404})
def activate_rule(session: SessionDep, caller: RuleEditor, rule_id: int) -> AutomationRuleRead:
    return _read(automation.set_active(session, caller.viewer, rule_id, True))


@router.post("/{rule_id}/deactivate", response_model=AutomationRuleRead, summary="停用自动化规则（经理）",
             responses={**_403, **_404})
def deactivate_rule(session: SessionDep, caller: RuleEditor, rule_id: int) -> AutomationRuleRead:
    return _read(automation.set_active(session, caller.viewer, rule_id, False))
