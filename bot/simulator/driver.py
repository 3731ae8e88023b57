"""The simulator's driver: plays WeCom's side of a corp's day.

Each call first updates the simulator's own state through its ``/_admin`` controls (so later API
calls such as ``externalcontact/get`` agree with the event), then sends the callback WeCom would
send: XML sealed and signed with :mod:`bot.callback_crypto` under the configured token, AES key and
corp id, POSTed over real HTTP to our ``/wecom/callback``.

    driver = Driver()                       # the configured simulator and this server's callback URL
    r = driver.add_external_contact("zhangsan", name="王先生", state="ch_12")
    r.external_userid, r.welcome_code, r.status_code   # 200 and "success" when our server accepted it
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import httpx

from bot import config
from bot.callback_crypto import CallbackCrypto
from core.settings import get_settings

_msg_ids = itertools.count(int(time.time() * 1000) % 10**12 * 1000)


@dataclass
class DriverResult:
    kind: str
    fields: dict[str, str]
    status_code: int
    response: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status_code == 200 and self.response == "success"

    @property
    def external_userid(self) -> str:
        return self.fields.get("ExternalUserID", "")

    @property
    def welcome_code(self) -> str:
        return self.fields.get("WelcomeCode", "")

    @property
    def chat_id(self) -> str:
        return self.fields.get("ChatId", "")


def new_external_userid() -> str:
    return "wmsim" + secrets.token_hex(10)


class Driver:
    def __init__(self, *, sim_base: str | None = None, callback_url: str | None = None,
                 crypto: CallbackCrypto | None = None, timeout: float = 10.0) -> None:
        self.sim_base = (sim_base or config.api_base()).rstrip("/")
        self.callback_url = callback_url or get_settings().base_url.rstrip("/") + "/wecom/callback"
        self.crypto = crypto or config.callback_crypto()
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    # --- plumbing ------------------------------------------------------------------------------
    def admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post(f"{self.sim_base}/_admin/{path.lstrip('/')}", json=body or {})
        response.raise_for_status()
        data = response.json()
        if data.get("errcode"):
            raise RuntimeError(f"simulator refused {path}: {data}")
        return data

    def send(self, fields: dict[str, str], *, extra: dict[str, Any] | None = None) -> DriverResult:
        """Seal, sign and POST one callback; returns what our server answered."""
        xml = "<xml>" + "".join(f"<{k}><![CDATA[{escape(str(v))}]]></{k}>" for k, v in fields.items()) + "</xml>"
        nonce, timestamp = secrets.token_hex(8), str(int(time.time()))
        body, signature = self.crypto.seal(xml, nonce, timestamp)
        url = self.callback_url + "?" + urlencode({"msg_signature": signature, "timestamp": timestamp,
                                                   "nonce": nonce})
        response = self.http.post(url, content=body.encode(), headers={"Content-Type": "text/xml"})
        kind = fields.get("ChangeType") or fields.get("MsgType", "")
        return DriverResult(kind, fields, response.status_code, response.text, extra or {})

    def _event(self, event: str, change_type: str | None, now: float, **fields: str) -> dict[str, str]:
        out = {"ToUserName": self.crypto.corp_id, "FromUserName": "sys", "CreateTime": str(int(now)),
               "MsgType": "event", "Event": event}
        if change_type:
            out["ChangeType"] = change_type
        out.update({k: v for k, v in fields.items() if v is not None})
        return out

    def _now(self) -> float:
        response = self.http.get(f"{self.sim_base}/_admin/clock")
        response.raise_for_status()
        return float(response.json()["now"])

    # --- customer contact (change_external_contact) ---------------------------------------------
    def add_external_contact(self, user_id: str, external_userid: str | None = None, *, name: str = "模拟客户",
                             state: str = "", unionid: str = "", welcome: bool = True) -> DriverResult:
        """A customer added ``user_id`` (through the 联系我 code whose state is ``state``)."""
        ext = external_userid or new_external_userid()
        reg = self.admin("contact", {"userid": user_id, "external_userid": ext, "name": name, "state": state,
                                     "unionid": unionid, "welcome": welcome})
        fields = self._event("change_external_contact", "add_external_contact", reg["now"], UserID=user_id,
                             ExternalUserID=ext, State=state or None, WelcomeCode=reg["welcome_code"] or None)
        return self.send(fields)

    def add_half_external_contact(self, user_id: str, external_userid: str | None = None, *,
                                  name: str = "模拟客户", state: str = "") -> DriverResult:
        """The customer added ``user_id``, who has not accepted yet (no welcome code)."""
        ext = external_userid or new_external_userid()
        reg = self.admin("contact", {"userid": user_id, "external_userid": ext, "name": name, "state": state,
                                     "welcome": False, "add_way": 1})
        fields = self._event("change_external_contact", "add_half_external_contact", reg["now"], UserID=user_id,
                             ExternalUserID=ext, State=state or None)
        return self.send(fields)

    def edit_external_contact(self, user_id: str, external_userid: str, *, remark: str | None = None) -> DriverResult:
        body: dict[str, Any] = {"userid": user_id, "external_userid": external_userid}
        if remark is not None:
            body["remark"] = remark
        reg = self.admin("contact/edit", body)
        return self.send(self._event("change_external_contact", "edit_external_contact", reg["now"], UserID=user_id,
                                     ExternalUserID=external_userid))

    def customer_deletes_staff(self, user_id: str, external_userid: str) -> DriverResult:
        """del_follow_user: the customer deleted the salesperson."""
        reg = self.admin("contact/remove", {"userid": user_id, "external_userid": external_userid})
        return self.send(self._event("change_external_contact", "del_follow_user", reg["now"], UserID=user_id,
                                     ExternalUserID=external_userid))

    def staff_deletes_customer(self, user_id: str, external_userid: str, *, source: str | None = None) -> DriverResult:
        """del_external_contact: the salesperson deleted the customer (Source=DELETE_BY_TRANSFER for transfers)."""
        reg = self.admin("contact/remove", {"userid": user_id, "external_userid": external_userid})
        return self.send(self._event("change_external_contact", "del_external_contact", reg["now"], UserID=user_id,
                                     ExternalUserID=external_userid, Source=source))

    def transfer_fail(self, takeover_userid: str, external_userid: str,
                      reason: str = "customer_refused") -> DriverResult:
        """transfer_fail: UserID is the TAKEOVER member; FailReason customer_refused | customer_limit_exceed."""
        self.admin("transfer_outcome", {"external_userid": external_userid,
                                        "outcome": "refuse" if reason == "customer_refused" else "limit"})
        return self.send(self._event("change_external_contact", "transfer_fail", self._now(), UserID=takeover_userid,
                                     ExternalUserID=external_userid, FailReason=reason))

    # --- group chats (change_external_chat) ------------------------------------------------------
    def create_group_chat(self, owner: str, name: str = "客户交流群") -> DriverResult:
        reg = self.admin("chat", {"owner": owner, "name": name})
        result = self.send(self._event("change_external_chat", "create", reg["now"], ChatId=reg["chat_id"]))
        return result

    def join_group_chat(self, chat_id: str, external_userid: str, *, join_scene: int = 3) -> DriverResult:
        reg = self.admin("chat/member", {"chat_id": chat_id, "member": external_userid, "action": "add",
                                         "join_scene": join_scene})
        return self.send(self._event("change_external_chat", "update", reg["now"], ChatId=chat_id,
                                     UpdateDetail="add_member", JoinScene=str(join_scene), MemChangeCnt="1",
                                     MemChangeList=None), extra={"member_count": reg["member_count"]})

    def leave_group_chat(self, chat_id: str, external_userid: str, *, quit_scene: int = 0) -> DriverResult:
        reg = self.admin("chat/member", {"chat_id": chat_id, "member": external_userid, "action": "del"})
        return self.send(self._event("change_external_chat", "update", reg["now"], ChatId=chat_id,
                                     UpdateDetail="del_member", QuitScene=str(quit_scene), MemChangeCnt="1"),
                         extra={"member_count": reg["member_count"]})

    # --- tags (change_external_tag), staff (change_contact), chat messages ---------------------
    def tag_event(self, change_type: str, *, tag_id: str | None = None, name: str | None = None,
                  group_id: str | None = None, group_name: str | None = None) -> DriverResult:
        """A tag created / updated / deleted in WeCom's admin console, or a shuffle (re-ordering)."""
        if change_type == "shuffle":
            now, tag_id, tag_type = self._now(), group_id or "etsimconsole", "tag_group"
        else:
            reg = self.admin("tag", {"change_type": change_type, "id": tag_id, "name": name, "group_id": group_id,
                                     "group_name": group_name})
            now, tag_id, tag_type = reg["now"], reg["id"], "tag"
        return self.send(self._event("change_external_tag", change_type, now, Id=tag_id, TagType=tag_type))

    def staff_left(self, user_id: str) -> DriverResult:
        """change_contact delete_user: the member left the corp (their customers await 离职继承)."""
        reg = self.admin("user/leave", {"userid": user_id})
        return self.send(self._event("change_contact", "delete_user", reg["now"], UserID=user_id))

    def text_message(self, user_id: str, content: str) -> DriverResult:
        """A salesperson typed ``content`` to our app (chat commands)."""
        fields = {"ToUserName": self.crypto.corp_id, "FromUserName": user_id, "CreateTime": str(int(self._now())),
                  "MsgType": "text", "Content": content, "MsgId": str(next(_msg_ids)),
                  "AgentID": get_settings().wecom_agent_id or "1000002"}
        return self.send(fields)

    def confirm_mass_message(self, msgid: str, user_id: str) -> dict[str, Any]:
        """The salesperson taps 发送 on a mass message in WeCom (no callback; results via the API)."""
        return self.admin("groupmsg/confirm", {"msgid": msgid, "userid": user_id})
