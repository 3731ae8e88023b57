"""How the console and the staff API show an AppError."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from admin.deps import load_console_user, render
from core.errors import AppError, NotAuthenticated, NotFound

# Field names of the staff API's request bodies, as its Chinese 422s name them (core.validation_messages).
API_FIELD_LABELS = {
    "name": "名称", "display_name": "姓名", "username": "登录名", "password": "密码", "phone": "手机号",
    "mobile": "手机号", "id_number": "身份证号", "region": "地区", "source": "来源", "source_detail": "来源明细",
    "customer_type": "客户类型", "customer_types": "客户类型", "grade": "等级", "grades": "等级", "stage": "阶段",
    "stages": "阶段", "status": "状态", "role": "角色", "level": "级别", "capacity": "容量", "data_scope": "数据范围",
    "department_id": "部门", "parent_id": "上级部门", "customer_id": "客户", "staff_id": "员工", "owner_id": "负责人",
    "pool_id": "公海", "to_pool_id": "目标公海", "target_pool_id": "目标公海", "target_staff_id": "目标员工",
    "member_ids": "成员", "reception_staff_id": "接待人", "demand_amount": "需求金额", "demand_term_months": "需求期限",
    "demand_purpose": "贷款用途", "amount": "金额", "term_months": "期限", "reason": "原因", "note": "备注",
    "content": "内容", "outcome": "结果", "kind": "类型", "title": "标题", "priority": "优先级", "due_at": "到期时间",
    "scheduled_at": "预约时间", "next_followup_at": "下次跟进时间", "duration_minutes": "时长",
    "cancel_reason": "取消原因", "mode": "方式", "trigger": "触发条件", "trigger_value": "触发值",
    "conditions": "条件", "combinator": "条件组合", "action": "动作", "warn_hours": "预警小时数",
    "no_followup_days": "未跟进天数", "not_converted_days": "未转化天数", "converted_stage": "转化阶段",
    "protection_days": "保护期天数", "cooldown_days": "冷却天数", "daily_claim_cap": "每日领取上限",
    "source_pattern": "来源匹配", "page": "页码", "page_size": "每页条数", "body": "请求内容",
    "expected_revision": "收费版本（expected_revision，您看到的结算 revision，首次收费为 0）",
}

ERROR_TITLES = {401: "请先登录", 403: "没有权限", 404: "页面不存在", 409: "操作冲突", 422: "输入不正确",
                423: "账号已锁定", 429: "操作过于频繁"}


def render_console_error(request: Request, exc: AppError) -> Response:
    if isinstance(exc, NotAuthenticated):
        target = request.url.path if request.method == "GET" else "/console/"
        return RedirectResponse(f"/console/login?next={quote(target)}", status_code=303)
    title = ERROR_TITLES.get(exc.status, "操作失败")
    return render(request, "error.html", {"title": title, "error": exc}, status_code=exc.status)


def render_api_error(request: Request, exc: AppError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)


class PageNotFound(NotFound):
    code = "page_not_found"
    message = "您要打开的页面不存在：链接可能有误，或页面已经移除。请从左侧菜单进入。"


async def render_not_found(request: Request, exc: StarletteHTTPException) -> Response:
    """An unknown console URL gets the console's own 404 page (with the menu when logged in), not JSON."""
    path = request.url.path
    if exc.status_code != 404 or not (path == "/console" or path.startswith("/console/")) \
            or path.startswith("/console/static/"):
        return await http_exception_handler(request, exc)
    user = await run_in_threadpool(load_console_user, request)
    if user is not None:
        request.state.console_user = user
    return render(request, "error.html", {"title": ERROR_TITLES[404], "error": PageNotFound()}, status_code=404)
