"""The simulated corp and the WeCom rules it enforces (wecom-api-rules.md).

Every API handler takes ``(state, query, body)`` and returns WeCom's JSON, or raises
:class:`SimError` (errcode, errmsg). Errcodes are WeCom's where its documentation names one
(40014/42001 tokens, 41051 welcome code, 40128/40129 transfer limits, 84061 no such relation, 45009
rate limit, 40071 duplicate tag name, 40068 unknown tag, 60011 no privilege); limit violations WeCom
documents without a specific code answer 40058 (invalid parameter) with an English errmsg naming the rule.

Time is the simulator's own: real time plus an offset that ``advance()`` moves forward, so tests move
transfers past 24 hours or welcome codes past 20 seconds without sleeping.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import itertools
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

TOKEN_TTL = 7200
WELCOME_CODE_TTL = 20
TRANSFER_DELAY = 24 * 3600
TRANSFER_WINDOW = 90 * 86400
TRANSFERS_PER_WINDOW = 2
MAX_PER_CALL = 100
MAX_CORP_TAGS = 3000
WAY_QUOTA = 500_000
MAX_STATE_CHARS = 30
MAX_JOIN_WAY_CHATS = 5
MAX_MSG_CHATS = 2000
MAX_REMINDS = 3
LOG_LIMIT = 5000
SHANGHAI = ZoneInfo("Asia/Shanghai")

Query = dict[str, str]
Body = dict[str, Any]
Handler = Callable[["SimState", Query, Body], dict[str, Any]]

HANDLERS: dict[tuple[str, str], Handler] = {}
NO_TOKEN_PATHS = {"cgi-bin/gettoken", "cgi-bin/webhook/send", "sns/jscode2session"}


class SimError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode, self.errmsg = errcode, errmsg


def bad(rule: str) -> SimError:
    return SimError(40058, f"invalid parameter: {rule}")


def api(method: str, path: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[(method.upper(), path)] = fn
        return fn

    return register


def ok(**fields: Any) -> dict[str, Any]:
    return {"errcode": 0, "errmsg": "ok", **fields}


def page(items: list[Any], cursor: str, size: int) -> tuple[list[Any], str]:
    """Cursor paging: the cursor is an opaque offset; an empty next_cursor means the last page."""
    try:
        start = int(cursor[1:]) if cursor else 0
    except ValueError as exc:
        raise bad("cursor") from exc
    chunk = items[start:start + size]
    end = start + len(chunk)
    return chunk, (f"c{end}" if end < len(items) else "")


class SimState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.offset = 0.0
            self.seq = itertools.count(1)
            self.tokens: dict[str, float] = {}  # token -> expires at (simulated epoch)
            self.requests: list[dict[str, Any]] = []
            self.arms: list[dict[str, Any]] = []
            self.page_size: int | None = None  # tests shrink pages to exercise cursors
            self.way_quota = WAY_QUOTA
            self.tag_cap = MAX_CORP_TAGS
            self.departed: dict[str, int] = {}  # userid -> dimission time
            self.contacts: dict[str, dict[str, Any]] = {}
            self.welcome_codes: dict[str, dict[str, Any]] = {}
            self.transfers: list[dict[str, Any]] = []
            self.transfer_outcomes: dict[str, str] = {}  # external_userid -> "refuse" | "limit"
            self.chats: dict[str, dict[str, Any]] = {}
            self.ways: dict[str, dict[str, Any]] = {}  # config_id -> 联系我 or 加入群聊 code
            self.tag_groups: dict[str, dict[str, Any]] = {}
            self.messages: dict[str, dict[str, Any]] = {}  # mass messages by msgid
            self.monthly_received: dict[tuple[str, str], int] = {}  # (external_userid, "YYYY-MM") -> count
            self.app_messages: list[dict[str, Any]] = []
            self.typed: list[dict[str, Any]] = []  # what the console's driver typed as a salesperson (transcript)
            self.webhook_messages: list[dict[str, Any]] = []
            self.appchats: dict[str, dict[str, Any]] = {}  # internal group chats our app created (appchat)
            self.appchat_messages: list[dict[str, Any]] = []
            self.used_js_codes: set[str] = set()
            self.jsapi_tickets: dict[str, float] = {}  # agent jsapi ticket -> expires at
            self.oauth_codes: dict[str, dict[str, Any]] = {}  # OAuth code -> {"userid", "issued_at", "used"}
            self.subscribe_messages: list[dict[str, Any]] = []  # mini-program 订阅消息
            self._seed_console_tags()

    def _seed_console_tags(self) -> None:
        """Tags made in WeCom's admin console: visible to the app, not editable by it."""
        now = int(self.now())
        self.tag_groups["etsimconsole"] = {
            "group_id": "etsimconsole", "group_name": "客户来源（管理后台创建）", "create_time": now, "order": 0,
            "created_by": "console",
            "tag": [{"id": "etsimtag_ad", "name": "广告投放", "create_time": now, "order": 0, "created_by": "console"},
                    {"id": "etsimtag_ref", "name": "老客转介", "create_time": now, "order": 1,
                     "created_by": "console"}],
        }

    # --- clock ---------------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        with self.lock:
            self.offset += seconds
            self.settle()
            return self.now()

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self.seq):06d}{secrets.token_hex(3)}"

    def size(self, default: int, requested: Any = None, maximum: int | None = None) -> int:
        if requested not in (None, "", 0):
            try:
                value = int(requested)
            except (TypeError, ValueError) as exc:
                raise bad("limit") from exc
            if value < 1 or (maximum is not None and value > maximum):
                raise bad(f"limit must be 1-{maximum}")
            default = value
        return min(default, self.page_size) if self.page_size else default

    # --- requests, arms, tokens -------------------------------------------------------------------
    def record(self, entry: dict[str, Any]) -> None:
        entry["seq"] = len(self.requests) + 1
        self.requests.append(entry)
        del self.requests[:-LOG_LIMIT]

    def arm(self, errcode: int, times: int = 1, path: str | None = None) -> None:
        with self.lock:
            self.arms.append({"errcode": int(errcode), "times": int(times), "path": path})

    def take_arm(self, path: str) -> int | None:
        for armed in self.arms:
            if armed["times"] > 0 and (armed["path"] is None or armed["path"] in path) and path != "cgi-bin/gettoken":
                armed["times"] -= 1
                return armed["errcode"]
        return None

    def check_token(self, token: str | None) -> None:
        if not token:
            raise SimError(41001, "access_token missing")
        expires = self.tokens.get(token)
        if expires is None:
            raise SimError(40014, "invalid access_token")
        if expires <= self.now():
            raise SimError(42001, "access_token expired")

    def expire_tokens(self) -> int:
        with self.lock:
            for token in self.tokens:
                self.tokens[token] = min(self.tokens[token], self.now() - 1)
            return len(self.tokens)

    # --- people and contacts ----------------------------------------------------------------------
    def follow(self, external_userid: str, userid: str) -> dict[str, Any] | None:
        contact = self.contacts.get(external_userid)
        return contact["follow"].get(userid) if contact else None

    def add_contact(self, userid: str, external_userid: str, name: str, state: str = "", unionid: str = "",
                    add_way: int = 1, welcome: bool = True) -> str:
        """A customer added ``userid`` (the driver calls this); returns the welcome code ('' if none)."""
        now = int(self.now())
        contact = self.contacts.setdefault(external_userid, {
            "external_userid": external_userid, "name": name, "type": 1, "gender": 0, "unionid": unionid,
            "avatar": "", "follow": {}})
        if name:
            contact["name"] = name
        if unionid:
            contact["unionid"] = unionid
        contact["follow"][userid] = {"userid": userid, "remark": "", "description": "", "createtime": now,
                                     "tags": [], "state": state, "add_way": add_way, "oper_userid": external_userid}
        if not welcome:
            return ""
        code = "wc" + secrets.token_urlsafe(18)
        self.welcome_codes[code] = {"issued_at": self.now(), "used": False, "userid": userid,
                                    "external_userid": external_userid}
        return code

    def remove_follow(self, userid: str, external_userid: str) -> None:
        contact = self.contacts.get(external_userid)
        if contact:
            contact["follow"].pop(userid, None)

    def leave(self, userid: str) -> None:
        self.departed.setdefault(userid, int(self.now()))

    def create_chat(self, owner: str, name: str, chat_id: str | None = None) -> str:
        chat_id = chat_id or self.new_id("wrsim")
        now = int(self.now())
        self.chats[chat_id] = {"chat_id": chat_id, "name": name, "owner": owner, "create_time": now, "notice": "",
                               "member_list": [{"userid": owner, "type": 1, "join_time": now, "join_scene": 1,
                                                "invitor": {"userid": owner}}],
                               "admin_list": [], "inherit": None}
        return chat_id

    def chat_member(self, chat_id: str, member: str, action: str, *, member_type: int = 2, join_scene: int = 3) -> None:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise SimError(40050, "chat_id not found")
        chat["member_list"] = [m for m in chat["member_list"] if m["userid"] != member]
        if action == "add":
            chat["member_list"].append({"userid": member, "type": member_type, "join_time": int(self.now()),
                                        "join_scene": join_scene, "invitor": {"userid": chat["owner"]}})

    # --- transfers --------------------------------------------------------------------------------
    def transfer_status(self, t: dict[str, Any]) -> int:
        if t["outcome"] == "refuse":
            return 3
        if t["outcome"] == "limit":
            return 4
        return 1 if self.now() >= t["started_at"] + TRANSFER_DELAY else 2

    def settle(self) -> None:
        """Complete the transfers whose 24 hours have passed: the takeover member now follows the customer."""
        for t in self.transfers:
            if t["applied"] or self.transfer_status(t) != 1:
                continue
            t["applied"] = True
            old = self.follow(t["external_userid"], t["handover"])
            contact = self.contacts.get(t["external_userid"])
            if contact is None:
                continue
            relation = dict(old) if old else {"remark": "", "description": "", "tags": [], "state": "",
                                               "add_way": 0}
            relation.update(userid=t["takeover"], createtime=int(t["started_at"] + TRANSFER_DELAY),
                            oper_userid=t["takeover"])
            contact["follow"].pop(t["handover"], None)
            contact["follow"][t["takeover"]] = relation

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            self.settle()
            return {
                "now": self.now(), "offset": self.offset, "departed": dict(self.departed),
                "contacts": self.contacts, "transfers": [dict(t, status=self.transfer_status(t))
                                                         for t in self.transfers],
                "chats": self.chats, "ways": self.ways, "tag_groups": self.tag_groups, "messages": self.messages,
                "app_messages": self.app_messages, "subscribe_messages": self.subscribe_messages, "webhook_messages": self.webhook_messages,
                "appchats": self.appchats, "appchat_messages": self.appchat_messages,
                "welcome_codes": self.welcome_codes, "arms": self.arms, "tokens": len(self.tokens),
            }

    # --- dispatch -----------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: Query, body: Body) -> dict[str, Any]:
        """Run one API request under the lock and record it; returns WeCom's JSON."""
        with self.lock:
            self.settle()
            try:
                handler = HANDLERS.get((method, path)) or HANDLERS.get(("POST" if method == "GET" else "GET", path))
                if handler is None:
                    raise SimError(404, f"simulator has no API {path}")
                if path not in NO_TOKEN_PATHS:
                    self.check_token(query.get("access_token"))
                armed = self.take_arm(path)
                if armed is not None:
                    raise SimError(armed, "api freq out of limit" if armed in (45009, 45033) else "armed error")
                result = handler(self, query, body)
            except SimError as exc:
                result = {"errcode": exc.errcode, "errmsg": exc.errmsg}
            shown = {k: (v[:6] + "…" if k in ("access_token", "corpsecret", "secret", "key") and v else v)
                     for k, v in query.items()}
            self.record({"at": self.now(), "method": method, "path": path, "query": shown, "body": body,
                         "errcode": result.get("errcode", 0)})
            return result


def month_key(epoch: float) -> tuple[str, int]:
    local = datetime.fromtimestamp(epoch, UTC).astimezone(SHANGHAI)
    return f"{local.year:04d}-{local.month:02d}", calendar.monthrange(local.year, local.month)[1]


def derived_session_key(identity: str) -> str:
    return base64.b64encode(hashlib.sha256(identity.encode()).digest()[:16]).decode()


STATE = SimState()  # the one simulated corp of this process
