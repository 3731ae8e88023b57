"""``/wecom/sidebar``: the chat sidebar's H5 page, its JSON API and the public product page.

Configure in WeCom (应用管理 → 自建应用 → 配置到聊天工具栏) the page ``{base_url}/wecom/sidebar/``.

- Who: the page sends the browser through WeCom's OAuth (snsapi_base) once; the code is exchanged
  for the member's userid (``auth/getuserinfo``) and a signed cookie (path ``/wecom/sidebar``) keeps
  the staff member for 12 hours. The API is called with a signed token the page carries
  (``X-Sidebar-Token``), never with the cookie, so no other site can make the browser act.
- Which chat: the page registers the JS-SDK (``ww.register`` with ``getAgentConfigSignature`` from
  ``/wecom/sidebar/api/agent-config``, signed with the app's jsapi ticket) and asks
  ``getContext`` / ``getCurExternalContact`` / ``getCurExternalChat``.
- Framing: WeCom shows the page in its client (and the simulator in an iframe of the same origin), so
  ``mount`` opts this prefix out of the product-wide no-framing rule (``core.web.allow_framing``):
  ``frame-ancestors`` is :data:`FRAME_ANCESTORS` here, ``'none'`` everywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader
from pydantic import BaseModel, Field

from bot import config, jsapi, sidebar
from bot.gateway import get_gateway
from bot.wecom_errors import WecomApiError, WecomUnavailable
from core import web
from core.db import unit_of_work
from core.errors import AppError
from core.security import sign, unsign
from core.settings import get_settings
from core.web import SessionDep
from crm.models import Staff, StaffStatus
from crm.scope import Viewer

PREFIX = "/wecom/sidebar"
COOKIE = "scrm_sidebar"
SESSION_SALT = "wecom-sidebar-session"
API_SALT = "wecom-sidebar-api"
MAX_AGE = 12 * 3600
JSSDK_FILE = "wecom-jssdk-2.4.4.js"  # @wecom/jssdk 2.4.4 from npm (dist/wecom.global.prod.js), MIT
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'",
    "Cache-Control": "no-store",
}
LABELS = {"tag_id": "标签", "content": "跟进内容", "title": "提醒内容", "due_at": "提醒时间", "product_id": "产品",
          "amount": "申请金额", "term_months": "期限", "kind": "消息类型", "url": "页面地址"}

router = APIRouter(prefix=PREFIX, include_in_schema=False)
_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def _message_page(message: str, status: int) -> HTMLResponse:
    return _html(_env.get_template("sidebar/message.html").render(message=message), status)


def _cookie_staff(request: Request) -> Staff | None:
    raw = request.cookies.get(COOKIE)
    staff_id = unsign(raw, SESSION_SALT, MAX_AGE) if raw else None
    if not staff_id:
        return None
    with unit_of_work() as session:
        staff = session.get(Staff, int(staff_id))
        if staff is None or staff.status != StaffStatus.ACTIVE:
            return None
        session.expunge(staff)
        return staff


def _authorize_redirect(request: Request) -> RedirectResponse:
    query = urlencode({"appid": config.corp_id(), "redirect_uri": str(request.base_url).rstrip("/") + PREFIX + "/",
                       "response_type": "code", "scope": "snsapi_base", "state": "sidebar",
                       "agentid": config.agent_id()})
    return RedirectResponse(f"{config.oauth_authorize_url()}?{query}#wechat_redirect", status_code=302,
                            headers={"Cache-Control": "no-store"})


@router.get("/")
def page(request: Request, code: str = "") -> Response:
    staff = _cookie_staff(request)
    if staff is None and code:
        try:
            userid = get_gateway().user_by_oauth_code(code[:128])
        except (WecomApiError, WecomUnavailable):
            return _message_page("企业微信登录已失效，请关闭侧边栏后重新打开", 403)
        with unit_of_work() as session:
            found = sidebar.staff_by_userid(session, userid)
            staff_id = found.id if found is not None else None
        if staff_id is None:
            return _message_page("您的企业微信账号尚未绑定本系统的员工，请联系管理员", 403)
        response = RedirectResponse(PREFIX + "/", status_code=303, headers={"Cache-Control": "no-store"})
        secure = get_settings().cookie_secure
        response.set_cookie(COOKIE, sign(str(staff_id), SESSION_SALT), max_age=MAX_AGE, path=PREFIX, httponly=True,
                            secure=secure, samesite="none" if secure else "lax")
        return response
    if staff is None:
        return _authorize_redirect(request)
    return _html(_env.get_template("sidebar/page.html").render(
        staff_name=staff.display_name, api_token=sign(str(staff.id), API_SALT), prefix=PREFIX,
        corp_id=config.corp_id(), agent_id=config.agent_id(), jssdk=f"{PREFIX}/static/{JSSDK_FILE}",
        js_api_list=",".join(jsapi.JS_API_LIST)))


@router.get("/product/{product_id}")
def product_page(product_id: int, session: SessionDep) -> Response:
    """The public page a product card sent into a chat opens (no customer data)."""
    try:
        shown = sidebar.product_page(session, product_id)
    except AppError:
        return _message_page("该产品已下架", 404)
    return _html(_env.get_template("sidebar/product.html").render(p=shown))


# --- the API --------------------------------------------------------------------------------------------

def _viewer(request: Request, session: SessionDep) -> Viewer:
    token = request.headers.get("x-sidebar-token", "")
    staff_id = unsign(token, API_SALT, MAX_AGE) if token else None
    staff = session.get(Staff, int(staff_id)) if staff_id else None
    if staff is None or staff.status != StaffStatus.ACTIVE:
        raise SidebarSessionExpired()
    return Viewer.of(staff)


class SidebarSessionExpired(AppError):
    code = "sidebar_session_expired"
    status = 401
    message = "侧边栏登录已过期，请关闭后重新打开"


class SignatureUrlRefused(AppError):
    code = "sidebar_signature_url"
    status = 422
    message = "只能为本系统的侧边栏页面签名"


ViewerDep = Annotated[Viewer, Depends(_viewer)]


def _checked_token(request: Request) -> int:
    """The page token's staff, checked in a unit of work of its own that is closed before any WeCom call
    (a request's session would hold SQLite's write lock while the token cache needs it)."""
    with unit_of_work() as session:
        return _viewer(request, session).staff_id


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})


@router.get("/api/agent-config")
def agent_config(request: Request, url: str = "") -> JSONResponse:
    """``getAgentConfigSignature``: wx.agentConfig's signature of the sidebar page's URL."""
    _checked_token(request)
    if not url.split("#", 1)[0].startswith(str(request.base_url).rstrip("/") + PREFIX + "/"):
        raise SignatureUrlRefused()
    ticket = get_gateway().agent_jsapi_ticket()
    return _json(jsapi.agent_config(url, ticket))


@router.get("/api/choices")
def choices(session: SessionDep, viewer: ViewerDep) -> JSONResponse:
    return _json({"tags": sidebar.tag_choices(session), "products": sidebar.product_choices(session),
                  "qualification": sidebar.qualification_choices()})


@router.get("/api/contact/{external_userid}")
def contact(external_userid: str, session: SessionDep, viewer: ViewerDep) -> JSONResponse:
    return _json(sidebar.contact_card(session, viewer, external_userid[:64]))


@router.get("/api/customers/{customer_id}")
def customer(customer_id: int, session: SessionDep, viewer: ViewerDep) -> JSONResponse:
    return _json(sidebar.customer_card(session, viewer, customer_id))


@router.get("/api/chat/{chat_id}")
def chat(chat_id: str, session: SessionDep, viewer: ViewerDep) -> JSONResponse:
    return _json(sidebar.group_customers(session, viewer, chat_id[:64]))


class TagIn(BaseModel):
    tag_id: int


class FollowUpIn(BaseModel):
    content: str = Field(max_length=1000)


class ReminderIn(BaseModel):
    title: str = Field(max_length=200)
    due_at: str = Field(max_length=40)


class ApplicationIn(BaseModel):
    product_id: int
    amount: str = Field(max_length=20)
    term_months: int
    idempotency_key: str | None = Field(default=None, max_length=80)


Values = dict[str, Any]  # checked field by field by crm, with Chinese messages


class ShareIn(BaseModel):
    kind: str = Field(max_length=20)
    product_id: int


@router.post("/api/customers/{customer_id}/tags")
def add_tag(customer_id: int, body: TagIn, session: SessionDep, viewer: ViewerDep) -> JSONResponse:
    return _json(sidebar.add_tag(session, viewer, customer_id, body.tag_id))


@router.post("/api/customers/{customer_id}/followups")
def add_followup(customer_id: int, body: FollowUpIn, session: SessionDep, viewer: ViewerDep) -> JSONResponse:
    return _json(sidebar.write_followup(session, viewer, customer_id, body.content))


@router.post("/api/customers/{customer_id}/reminders")
def add_reminder(customer_id: int, body: ReminderIn, session: SessionDep, viewer: ViewerDep) -> JSONResponse:
    return _json(sidebar.set_reminder(session, viewer, customer_id, body.title, body.due_at), 201)


@router.post("/api/customers/{customer_id}/applications")
def add_application(customer_id: int, body: ApplicationIn, session: SessionDep, viewer: ViewerDep) -> JSONResponse:
    return _json(sidebar.start_application(session, viewer, customer_id, body.product_id, body.amount,
                                           body.term_months, body.idempotency_key), 201)


@router.put("/api/customers/{customer_id}/qualification")
def save_qualification(customer_id: int, body: Values, session: SessionDep, viewer: ViewerDep) -> JSONResponse:
    return _json(sidebar.save_qualification(session, viewer, customer_id, body))


@router.put("/api/customers/{customer_id}/fields")
def save_fields(customer_id: int, body: Values, session: SessionDep, viewer: ViewerDep) -> JSONResponse:
    return _json(sidebar.save_custom_fields(session, viewer, customer_id, body))


@router.post("/api/customers/{customer_id}/share")
def share(customer_id: int, body: ShareIn, request: Request, session: SessionDep, viewer: ViewerDep) -> JSONResponse:
    return _json(sidebar.share_message(session, viewer, customer_id, body.kind, body.product_id,
                                       str(request.base_url)))


# Who may show the sidebar in a frame: ourselves (the simulator's WeCom-client page) and WeCom's web client.
FRAME_ANCESTORS = "'self' https://*.work.weixin.qq.com"


def mount(app: FastAPI) -> None:
    web.allow_framing(PREFIX, FRAME_ANCESTORS)
    app.include_router(router)
    app.mount(PREFIX + "/static", StaticFiles(directory=Path(__file__).parent / "static" / "sidebar"),
              name="wecom-sidebar-static")
    app.state.validation_labels[PREFIX + "/api"] = LABELS
