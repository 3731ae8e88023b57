"""The WeCom API client: a thin layer over wechatpy 1.8.18 with what production needs around it.

- The API base comes from :func:`bot.config.api_base` (the built-in simulator unless real
  credentials are set); wechatpy's hard-coded gettoken URL is overridden.
- Connect and read timeouts (5 s each) on every call.
- The access token is cached in Redis, or in the database without Redis (:mod:`bot.token_cache`),
  refreshed under a lock 5 minutes before it expires; an in-process copy saves a cache read per call.
  The app's jsapi ticket (``wx.agentConfig``, the chat sidebar) is cached the same way under its own key.
- errcode 40014 / 42001: one forced refresh and one retry. 45009 / 45033 (rate limits): bounded
  retries with exponential backoff, then :class:`WecomRateLimited`. Any other errcode != 0:
  :class:`WecomApiError` with a Chinese message.
- The endpoints wechatpy lacks are called through its generic ``post``/``get``; one method per
  endpoint, returning WeCom's parsed JSON.

Domains never call this module: they enqueue ``bot.*`` tasks, and the tasks call the gateway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

import requests
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException

from bot import config
from bot.token_cache import CachedToken, TokenCache, cache_key, default_cache
from bot.wecom_errors import WecomApiError, WecomRateLimited, WecomUnavailable
from core.settings import get_settings

log = logging.getLogger(__name__)

TOKEN_ERRCODES = frozenset({40014, 42001})
RATE_LIMIT_ERRCODES = frozenset({45009, 45033})
SIMULATOR_SECRET = "simulator-secret"  # noqa: S105 - not a secret: the simulator accepts any non-empty secret for its demo corp
DEFAULT_TIMEOUT = (5.0, 5.0)  # (connect, read) seconds
REFRESH_AHEAD = timedelta(minutes=5)
WECHAT_API_BASE = "https://api.weixin.qq.com"


class _Client(WeChatClient):
    """wechatpy's enterprise client pointed at our API base, with our token cache behind ``access_token``."""

    def __init__(self, gateway: Gateway, corp_id: str, secret: str, timeout: Any) -> None:
        self._gateway = gateway
        super().__init__(corp_id, secret, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = gateway.api_base + "/cgi-bin/"

    @property
    def access_token(self) -> str:  # wechatpy reads this when a request carries no access_token
        return self._gateway.access_token()

    def fetch_access_token(self) -> dict[str, Any]:
        """gettoken at our API base (wechatpy hard-codes qyapi.weixin.qq.com). Stores nothing itself."""
        res = self._http.get(self._gateway.api_base + "/cgi-bin/gettoken",
                             params={"corpid": self.corp_id, "corpsecret": self.secret}, timeout=self.timeout)
        res.raise_for_status()
        return res.json()


class Gateway:
    def __init__(self, *, corp_id: str | None = None, secret: str | None = None, api_base: str | None = None,
                 cache: TokenCache | None = None, timeout: Any = DEFAULT_TIMEOUT, max_rate_retries: int = 3,
                 backoff_seconds: float = 1.0, sleep: Callable[[float], None] = time.sleep,
                 refresh_ahead: timedelta = REFRESH_AHEAD, agent_id: str | None = None) -> None:
        settings = get_settings()
        self.api_base = (api_base or config.api_base()).rstrip("/")
        self.corp_id = corp_id or config.corp_id()
        self.secret = secret or settings.wecom_secret or (SIMULATOR_SECRET if settings.wecom_simulated else "")
        self.agent_id = agent_id if agent_id is not None else settings.wecom_agent_id
        self.cache = cache or default_cache()
        self.max_rate_retries = max_rate_retries
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        self.refresh_ahead = refresh_ahead
        self.cache_key = cache_key(self.corp_id, self.secret)
        self._memo: CachedToken | None = None
        self._ticket_memo: CachedToken | None = None
        self._memo_lock = threading.Lock()
        self.client = _Client(self, self.corp_id, self.secret, timeout)

    # --- access token -------------------------------------------------------------------------
    def _fetch(self) -> tuple[str, int]:
        try:
            result = self.client.fetch_access_token()
        except requests.RequestException as exc:
            raise WecomUnavailable() from exc
        except ValueError as exc:
            raise WecomUnavailable("企业微信 gettoken 返回了无法解析的内容") from exc
        errcode = int(result.get("errcode") or 0)
        if errcode or not result.get("access_token"):
            raise WecomApiError(errcode or -1, str(result.get("errmsg", "")))
        log.info("wecom access token fetched")
        return str(result["access_token"]), int(result.get("expires_in") or 7200)

    def access_token(self) -> str:
        memo = self._memo
        if memo is not None and memo.fresh(self.refresh_ahead):
            return memo.token
        cached = self.cache.get(self.cache_key)
        if cached is None or not cached.fresh(self.refresh_ahead):
            try:
                cached = self.cache.refresh(self.cache_key, self._fetch, ahead=self.refresh_ahead)
            except (WecomApiError, WecomUnavailable):
                if cached is not None and cached.valid():  # refreshing early failed: the old one still works
                    return cached.token
                raise
        with self._memo_lock:
            self._memo = cached
        return cached.token

    def refresh_token(self, stale: str | None = None) -> str:
        """Force a new token unless another caller already replaced ``stale`` with a fresh one."""
        with self._memo_lock:
            self._memo = None
        fresh = self.cache.refresh(self.cache_key, self._fetch, ahead=self.refresh_ahead, stale=stale)
        with self._memo_lock:
            self._memo = fresh
        return fresh.token

    # --- the app's jsapi ticket (wx.agentConfig) --------------------------------------------------
    @property
    def ticket_cache_key(self) -> str:
        return f"{self.cache_key}:agent_ticket"

    def _fetch_agent_ticket(self) -> tuple[str, int]:
        result = self.get("ticket/get", {"type": "agent_config"})
        if not result.get("ticket"):
            raise WecomUnavailable("企业微信 ticket/get 没有返回 ticket")
        log.info("wecom agent jsapi ticket fetched")
        return str(result["ticket"]), int(result.get("expires_in") or 7200)

    def agent_jsapi_ticket(self) -> str:
        """The app's jsapi ticket for ``wx.agentConfig``: cached and refreshed like the access token
        (WeCom limits how often it may be fetched, so every process shares one)."""
        memo = self._ticket_memo
        if memo is not None and memo.fresh(self.refresh_ahead):
            return memo.token
        cached = self.cache.get(self.ticket_cache_key)
        if cached is None or not cached.fresh(self.refresh_ahead):
            # A fresh access token first, outside the ticket's refresh lock: without Redis both locks are
            # database writes, and on SQLite the second would wait for the first.
            self.access_token()
            try:
                cached = self.cache.refresh(self.ticket_cache_key, self._fetch_agent_ticket, ahead=self.refresh_ahead)
            except (WecomApiError, WecomUnavailable):
                if cached is not None and cached.valid():
                    return cached.token
                raise
        with self._memo_lock:
            self._ticket_memo = cached
        return cached.token

    def user_by_oauth_code(self, code: str) -> str:
        """The member's userid behind a WeCom OAuth code (snsapi_base); '' for a non-member."""
        result = self.get("auth/getuserinfo", {"code": code})
        return str(result.get("userid") or result.get("UserId") or "")

    # --- the call loop ------------------------------------------------------------------------
    def call(self, method: str, endpoint: str, *, params: dict[str, Any] | None = None,
             json: dict[str, Any] | None = None, with_token: bool = True, base: str | None = None) -> dict[str, Any]:
        """One WeCom API call: ``endpoint`` relative to ``{api_base}/cgi-bin/`` (or to ``base``)."""
        token_retried = False
        rate_attempt = 0
        while True:
            token = self.access_token() if with_token else None
            # access_token=None keeps wechatpy from adding one; requests drops None-valued params.
            query = {**(params or {}), "access_token": token}
            kwargs: dict[str, Any] = {"params": query}
            if json is not None:
                kwargs["data"] = json
            if base is not None:
                kwargs["api_base_url"] = base
            try:
                result = self.client._request(method, endpoint, **kwargs)
            except WeChatClientException as exc:
                errcode = exc.errcode
                if errcode is None:  # an HTTP error status, not a WeCom answer
                    raise WecomUnavailable() from exc
                errcode = int(errcode)
                if errcode in TOKEN_ERRCODES and with_token and not token_retried:
                    token_retried = True
                    log.info("wecom token refused (%s): refreshing once and retrying %s", errcode, endpoint)
                    self.refresh_token(stale=token)
                    continue
                if errcode in RATE_LIMIT_ERRCODES:
                    if rate_attempt < self.max_rate_retries:
                        delay = self.backoff_seconds * (2 ** rate_attempt)
                        rate_attempt += 1
                        log.warning("wecom rate limit %s on %s: retry %s in %.2fs", errcode, endpoint, rate_attempt,
                                    delay)
                        self.sleep(delay)
                        continue
                    raise WecomRateLimited(errcode, str(exc.errmsg or "")) from exc
                raise WecomApiError(errcode, str(exc.errmsg or "")) from exc
            except requests.RequestException as exc:
                raise WecomUnavailable() from exc
            if not isinstance(result, dict):
                raise WecomUnavailable("企业微信返回了无法解析的内容")
            return result

    def post(self, endpoint: str, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.call("post", endpoint, json=body, **kwargs)

    def get(self, endpoint: str, params: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        return self.call("get", endpoint, params=params, **kwargs)

    # --- in-service and resigned transfer (在职继承 / 离职继承) ----------------------------------
    def transfer_customer(self, handover_userid: str, takeover_userid: str, external_userids: Sequence[str],
                          transfer_success_msg: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"handover_userid": handover_userid, "takeover_userid": takeover_userid,
                                "external_userid": list(external_userids)}
        if transfer_success_msg:
            body["transfer_success_msg"] = transfer_success_msg
        return self.post("externalcontact/transfer_customer", body)

    def transfer_result(self, handover_userid: str, takeover_userid: str, cursor: str = "") -> dict[str, Any]:
        return self.post("externalcontact/transfer_result", {"handover_userid": handover_userid,
                                                             "takeover_userid": takeover_userid, "cursor": cursor})

    def resigned_transfer_customer(self, handover_userid: str, takeover_userid: str,
                                   external_userids: Sequence[str]) -> dict[str, Any]:
        return self.post("externalcontact/resigned/transfer_customer", {
            "handover_userid": handover_userid, "takeover_userid": takeover_userid,
            "external_userid": list(external_userids)})

    def resigned_transfer_result(self, handover_userid: str, takeover_userid: str, cursor: str = "") -> dict[str, Any]:
        return self.post("externalcontact/resigned/transfer_result", {
            "handover_userid": handover_userid, "takeover_userid": takeover_userid, "cursor": cursor})

    def get_unassigned_list(self, cursor: str = "", page_size: int = 1000) -> dict[str, Any]:
        return self.post("externalcontact/get_unassigned_list", {"cursor": cursor, "page_size": page_size})

    def groupchat_transfer(self, chat_ids: Sequence[str], new_owner: str) -> dict[str, Any]:
        """Resigned owner's group chats to ``new_owner``."""
        return self.post("externalcontact/groupchat/transfer", {"chat_id_list": list(chat_ids), "new_owner": new_owner})

    def groupchat_onjob_transfer(self, chat_ids: Sequence[str], new_owner: str) -> dict[str, Any]:
        return self.post("externalcontact/groupchat/onjob_transfer",
                         {"chat_id_list": list(chat_ids), "new_owner": new_owner})

    # --- group chats -------------------------------------------------------------------------
    def groupchat_list(self, status_filter: int = 0, owner_userids: Sequence[str] | None = None,
                       limit: int = 100, cursor: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {"status_filter": status_filter, "limit": limit, "cursor": cursor}
        if owner_userids:
            body["owner_filter"] = {"userid_list": list(owner_userids)}
        return self.post("externalcontact/groupchat/list", body)

    def groupchat_get(self, chat_id: str, need_name: bool = False) -> dict[str, Any]:
        return self.post("externalcontact/groupchat/get", {"chat_id": chat_id, "need_name": int(need_name)})

    def add_join_way(self, chat_ids: Sequence[str], *, scene: int = 2, remark: str | None = None,
                     auto_create_room: bool = True, room_base_name: str | None = None,
                     room_base_id: int | None = None, state: str | None = None) -> dict[str, Any]:
        body = _drop_none({"scene": scene, "remark": remark, "auto_create_room": int(auto_create_room),
                           "room_base_name": room_base_name, "room_base_id": room_base_id,
                           "chat_id_list": list(chat_ids), "state": state})
        return self.post("externalcontact/groupchat/add_join_way", body)

    def get_join_way(self, config_id: str) -> dict[str, Any]:
        return self.post("externalcontact/groupchat/get_join_way", {"config_id": config_id})

    def update_join_way(self, config_id: str, chat_ids: Sequence[str], *, scene: int = 2, remark: str | None = None,
                        auto_create_room: bool = True, room_base_name: str | None = None,
                        room_base_id: int | None = None, state: str | None = None) -> dict[str, Any]:
        body = _drop_none({"config_id": config_id, "scene": scene, "remark": remark,
                           "auto_create_room": int(auto_create_room), "room_base_name": room_base_name,
                           "room_base_id": room_base_id, "chat_id_list": list(chat_ids), "state": state})
        return self.post("externalcontact/groupchat/update_join_way", body)

    def del_join_way(self, config_id: str) -> dict[str, Any]:
        return self.post("externalcontact/groupchat/del_join_way", {"config_id": config_id})

    # --- mass messages (群发) -----------------------------------------------------------------
    def add_msg_template(self, chat_type: str, *, text: str | None = None, external_userids: Sequence[str] = (),
                         chat_ids: Sequence[str] = (), sender: str | None = None,
                         attachments: Sequence[dict[str, Any]] = (), tag_filter: dict[str, Any] | None = None,
                         allow_select: bool | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"chat_type": chat_type}
        if external_userids:
            body["external_userid"] = list(external_userids)
        if chat_ids:
            body["chat_id_list"] = list(chat_ids)
        if sender:
            body["sender"] = sender
        if text is not None:
            body["text"] = {"content": text}
        if attachments:
            body["attachments"] = list(attachments)
        if tag_filter:
            body["tag_filter"] = tag_filter
        if allow_select is not None:
            body["allow_select"] = allow_select
        return self.post("externalcontact/add_msg_template", body)

    def get_groupmsg_list_v2(self, chat_type: str, start_time: int, end_time: int, *, creator: str | None = None,
                             filter_type: int = 2, limit: int = 100, cursor: str = "") -> dict[str, Any]:
        return self.post("externalcontact/get_groupmsg_list_v2", _drop_none({
            "chat_type": chat_type, "start_time": start_time, "end_time": end_time, "creator": creator,
            "filter_type": filter_type, "limit": limit, "cursor": cursor}))

    def get_groupmsg_task(self, msgid: str, limit: int = 1000, cursor: str = "") -> dict[str, Any]:
        return self.post("externalcontact/get_groupmsg_task", {"msgid": msgid, "limit": limit, "cursor": cursor})

    def get_groupmsg_send_result(self, msgid: str, userid: str, limit: int = 1000, cursor: str = "") -> dict[str, Any]:
        return self.post("externalcontact/get_groupmsg_send_result",
                         {"msgid": msgid, "userid": userid, "limit": limit, "cursor": cursor})

    def remind_groupmsg_send(self, msgid: str) -> dict[str, Any]:
        return self.post("externalcontact/remind_groupmsg_send", {"msgid": msgid})

    def send_welcome_msg(self, welcome_code: str, *, text: str | None = None,
                         attachments: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        body: dict[str, Any] = {"welcome_code": welcome_code}
        if text is not None:
            body["text"] = {"content": text}
        if attachments:
            body["attachments"] = list(attachments)
        return self.post("externalcontact/send_welcome_msg", body)

    # --- customers ---------------------------------------------------------------------------
    def get_external_contact(self, external_userid: str, cursor: str = "") -> dict[str, Any]:
        params = {"external_userid": external_userid}
        if cursor:
            params["cursor"] = cursor
        return self.get("externalcontact/get", params)

    def remark(self, userid: str, external_userid: str, *, remark: str | None = None,
               description: str | None = None, remark_company: str | None = None,
               remark_mobiles: Sequence[str] | None = None) -> dict[str, Any]:
        return self.post("externalcontact/remark", _drop_none({
            "userid": userid, "external_userid": external_userid, "remark": remark, "description": description,
            "remark_company": remark_company,
            "remark_mobiles": list(remark_mobiles) if remark_mobiles is not None else None}))

    def unionid_to_external_userid(self, unionid: str, openid: str, subject_type: int | None = None) -> dict[str, Any]:
        return self.post("externalcontact/unionid_to_external_userid",
                         _drop_none({"unionid": unionid, "openid": openid, "subject_type": subject_type}))

    # --- channel codes (联系我) ----------------------------------------------------------------
    def add_contact_way(self, *, type: int, scene: int, users: Sequence[str] = (), parties: Sequence[int] = (),
                        state: str | None = None, skip_verify: bool = True, remark: str | None = None,
                        style: int | None = None, is_temp: bool = False, is_exclusive: bool = False) -> dict[str, Any]:
        body = _drop_none({"type": type, "scene": scene, "style": style, "remark": remark, "skip_verify": skip_verify,
                           "state": state, "user": list(users) or None, "party": list(parties) or None,
                           "is_temp": is_temp, "is_exclusive": is_exclusive})
        return self.post("externalcontact/add_contact_way", body)

    def update_contact_way(self, config_id: str, *, users: Sequence[str] | None = None,
                           parties: Sequence[int] | None = None, state: str | None = None,
                           skip_verify: bool | None = None, remark: str | None = None,
                           style: int | None = None) -> dict[str, Any]:
        body = _drop_none({"config_id": config_id, "remark": remark, "skip_verify": skip_verify, "style": style,
                           "state": state, "user": list(users) if users is not None else None,
                           "party": list(parties) if parties is not None else None})
        return self.post("externalcontact/update_contact_way", body)

    def del_contact_way(self, config_id: str) -> dict[str, Any]:
        return self.post("externalcontact/del_contact_way", {"config_id": config_id})

    # --- tags --------------------------------------------------------------------------------
    def get_corp_tag_list(self, tag_ids: Sequence[str] = (), group_ids: Sequence[str] = ()) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if tag_ids:
            body["tag_id"] = list(tag_ids)
        if group_ids:
            body["group_id"] = list(group_ids)
        return self.post("externalcontact/get_corp_tag_list", body)

    def add_corp_tag(self, tags: Iterable[str | dict[str, Any]], *, group_id: str | None = None,
                     group_name: str | None = None, order: int | None = None) -> dict[str, Any]:
        tag_list = [t if isinstance(t, dict) else {"name": t} for t in tags]
        body = _drop_none({"group_id": group_id, "group_name": group_name, "order": order, "tag": tag_list,
                           "agentid": int(self.agent_id) if str(self.agent_id or "").isdigit() else None})
        return self.post("externalcontact/add_corp_tag", body)

    def edit_corp_tag(self, tag_or_group_id: str, *, name: str | None = None, order: int | None = None) -> dict[str, Any]:
        return self.post("externalcontact/edit_corp_tag",
                         _drop_none({"id": tag_or_group_id, "name": name, "order": order}))

    def del_corp_tag(self, tag_ids: Sequence[str] = (), group_ids: Sequence[str] = ()) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if tag_ids:
            body["tag_id"] = list(tag_ids)
        if group_ids:
            body["group_id"] = list(group_ids)
        return self.post("externalcontact/del_corp_tag", body)

    def mark_tag(self, userid: str, external_userid: str, *, add_tag: Sequence[str] = (),
                 remove_tag: Sequence[str] = ()) -> dict[str, Any]:
        body: dict[str, Any] = {"userid": userid, "external_userid": external_userid}
        if add_tag:
            body["add_tag"] = list(add_tag)
        if remove_tag:
            body["remove_tag"] = list(remove_tag)
        return self.post("externalcontact/mark_tag", body)

    # --- app messages and the group robot ----------------------------------------------------
    def send_app_message(self, touser: Sequence[str], content: str, *, msgtype: str = "text",
                         title: str | None = None, url: str | None = None) -> dict[str, Any]:
        """message/send from our self-built app: text, markdown, or textcard (title + url)."""
        body: dict[str, Any] = {"touser": "|".join(touser), "msgtype": msgtype,
                                "agentid": int(self.agent_id) if str(self.agent_id or "").isdigit() else 0}
        if msgtype == "textcard":
            body["textcard"] = {"title": title or "", "description": content, "url": url or "", "btntxt": "详情"}
        else:
            body[msgtype] = {"content": content}
        return self.post("message/send", body)

    # --- internal group chats made by our app (应用群聊: appchat) -----------------------------------
    def appchat_create(self, name: str, userlist: Sequence[str], *, owner: str | None = None,
                       chatid: str | None = None) -> dict[str, Any]:
        """appchat/create: a group chat of staff (2–2000 members) that our app may send to; returns its chatid."""
        return self.post("appchat/create", _drop_none({"name": name, "owner": owner, "userlist": list(userlist),
                                                       "chatid": chatid}))

    def appchat_get(self, chatid: str) -> dict[str, Any]:
        return self.get("appchat/get", {"chatid": chatid})

    def appchat_send(self, chatid: str, content: str, *, msgtype: str = "text") -> dict[str, Any]:
        """appchat/send: text or markdown into a group chat our app created."""
        return self.post("appchat/send", {"chatid": chatid, "msgtype": msgtype, msgtype: {"content": content},
                                          "safe": 0})

    def webhook_send(self, key: str, content: str, *, msgtype: str = "text",
                     mentioned_list: Sequence[str] = ()) -> dict[str, Any]:
        """Group robot (群机器人): ``cgi-bin/webhook/send?key=…``; the key is the credential, no access token."""
        payload: dict[str, Any] = {"content": content}
        if mentioned_list and msgtype == "text":
            payload["mentioned_list"] = list(mentioned_list)
        return self.call("post", "webhook/send", params={"key": key}, json={"msgtype": msgtype, msgtype: payload},
                         with_token=False)

    # --- mini-program login (WeChat, not WeCom) ----------------------------------------------
    def jscode2session(self, appid: str, secret: str, js_code: str) -> dict[str, Any]:
        """``sns/jscode2session`` called directly: it needs no access token (wechatpy's helper fetches one)."""
        return self.call("get", "sns/jscode2session", with_token=False, base=wechat_api_base() + "/",
                         params={"appid": appid, "secret": secret, "js_code": js_code,
                                 "grant_type": "authorization_code"})


def wechat_api_base() -> str:
    """WeChat's (not WeCom's) API: the simulator serves ``/sns/jscode2session`` too when simulated."""
    return config.api_base() if get_settings().wecom_simulated else WECHAT_API_BASE


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


_default: Gateway | None = None
_default_lock = threading.Lock()


def get_gateway() -> Gateway:
    """The process's gateway for the configured corp (tasks use this); rebuilt after :func:`reset`."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Gateway()
        return _default


def reset() -> None:
    global _default
    with _default_lock:
        _default = None
