"""The simulator's WeCom API handlers, one per endpoint, registered with :func:`state.api`."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from bot import config, jsapi
from bot.simulator.state import (
    MAX_JOIN_WAY_CHATS,
    MAX_MSG_CHATS,
    MAX_PER_CALL,
    MAX_REMINDS,
    MAX_STATE_CHARS,
    TOKEN_TTL,
    TRANSFER_DELAY,
    TRANSFER_WINDOW,
    TRANSFERS_PER_WINDOW,
    WELCOME_CODE_TTL,
    Body,
    Query,
    SimError,
    SimState,
    api,
    bad,
    derived_session_key,
    month_key,
    ok,
    page,
)
from core import simulators


def _list(body: Body, name: str) -> list[Any]:
    value = body.get(name) or []
    if not isinstance(value, list):
        raise bad(f"{name} must be a list")
    return value


def _state_ok(state: Any) -> None:
    if state is not None and len(str(state)) > MAX_STATE_CHARS:
        raise bad(f"state longer than {MAX_STATE_CHARS} characters")


# --- access token ---------------------------------------------------------------------------------
@api("GET", "cgi-bin/gettoken")
def gettoken(s: SimState, q: Query, _: Body) -> dict[str, Any]:
    if q.get("corpid") != config.corp_id():
        raise SimError(40013, "invalid corpid")
    if not q.get("corpsecret"):
        raise SimError(40001, "invalid secret")
    token = s.new_id("simtok")
    s.tokens[token] = s.now() + TOKEN_TTL
    return ok(access_token=token, expires_in=TOKEN_TTL)


# --- the JS-SDK and OAuth (the chat sidebar) ----------------------------------------------------------
OAUTH_CODE_TTL = 300


@api("GET", "cgi-bin/ticket/get")
def ticket_get(s: SimState, q: Query, _: Body) -> dict[str, Any]:
    """The app's jsapi ticket (type=agent_config), what ``wx.agentConfig`` is signed with."""
    if q.get("type") != "agent_config":
        raise bad("type must be agent_config")
    ticket = s.new_id("simticket") + secrets.token_urlsafe(24)
    s.jsapi_tickets[ticket] = s.now() + TOKEN_TTL
    return ok(ticket=ticket, expires_in=TOKEN_TTL)


def issue_oauth_code(s: SimState, userid: str) -> str:
    code = "oc" + secrets.token_urlsafe(18)
    s.oauth_codes[code] = {"userid": userid, "issued_at": s.now(), "used": False}
    return code


@api("GET", "cgi-bin/auth/getuserinfo")
def getuserinfo(s: SimState, q: Query, _: Body) -> dict[str, Any]:
    entry = s.oauth_codes.get(q.get("code") or "")
    if entry is None or entry["used"] or s.now() - entry["issued_at"] > OAUTH_CODE_TTL:
        raise SimError(40029, "invalid code")
    entry["used"] = True
    return ok(userid=entry["userid"])


def verify_agent_config(s: SimState, url: str, timestamp: str, nonce: str, sig: str) -> bool:
    """What WeCom's client does with ``wx.agentConfig``: the signature over a ticket it issued, still valid."""
    now = s.now()
    return any(exp > now and jsapi.signature(t, nonce, timestamp, url) == sig for t, exp in s.jsapi_tickets.items())


# --- transfers ------------------------------------------------------------------------------------
def _start_transfers(s: SimState, body: Body, kind: str) -> dict[str, Any]:
    handover, takeover = body.get("handover_userid") or "", body.get("takeover_userid") or ""
    externals = _list(body, "external_userid")
    if not handover or not takeover or not externals:
        raise bad("handover_userid, takeover_userid and external_userid are required")
    if len(externals) > MAX_PER_CALL:
        raise bad(f"external_userid at most {MAX_PER_CALL} per call")
    if len(body.get("transfer_success_msg") or "") > 200:
        raise bad("transfer_success_msg at most 200 characters")
    if kind == "resigned" and handover not in s.departed:
        raise bad("handover_userid has not resigned")
    if kind == "onjob" and handover in s.departed:
        raise bad("handover_userid has resigned: use resigned/transfer_customer")
    now = s.now()
    out = []
    for ext in externals:
        errcode = 0
        in_window = [t for t in s.transfers if t["external_userid"] == ext and t["kind"] == "onjob"
                     and t["started_at"] > now - TRANSFER_WINDOW]
        if s.follow(ext, handover) is None:
            errcode = 84061
        elif any(t["external_userid"] == ext and s.transfer_status(t) == 2 for t in s.transfers):
            errcode = 40129
        elif kind == "onjob" and len(in_window) >= TRANSFERS_PER_WINDOW:
            errcode = 40128
        else:
            s.transfers.append({"kind": kind, "handover": handover, "takeover": takeover, "external_userid": ext,
                                "started_at": now, "outcome": s.transfer_outcomes.get(ext), "applied": False})
        out.append({"external_userid": ext, "errcode": errcode})
    return ok(customer=out)


def _transfer_result(s: SimState, body: Body, kind: str) -> dict[str, Any]:
    handover, takeover = body.get("handover_userid") or "", body.get("takeover_userid") or ""
    latest: dict[str, dict[str, Any]] = {}
    for t in s.transfers:
        if t["kind"] == kind and t["handover"] == handover and t["takeover"] == takeover:
            latest[t["external_userid"]] = t
    rows = [{"external_userid": t["external_userid"], "status": s.transfer_status(t),
             "takeover_time": int(t["started_at"] + TRANSFER_DELAY)} for t in latest.values()]
    chunk, cursor = page(rows, body.get("cursor") or "", s.size(MAX_PER_CALL))
    return ok(customer=chunk, next_cursor=cursor)


@api("POST", "cgi-bin/externalcontact/transfer_customer")
def transfer_customer(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    return _start_transfers(s, body, "onjob")


@api("POST", "cgi-bin/externalcontact/transfer_result")
def transfer_result(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    return _transfer_result(s, body, "onjob")


@api("POST", "cgi-bin/externalcontact/resigned/transfer_customer")
def resigned_transfer_customer(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    return _start_transfers(s, body, "resigned")


@api("POST", "cgi-bin/externalcontact/resigned/transfer_result")
def resigned_transfer_result(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    return _transfer_result(s, body, "resigned")


@api("POST", "cgi-bin/externalcontact/get_unassigned_list")
def get_unassigned_list(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    rows = []
    pending = {(t["handover"], t["external_userid"]) for t in s.transfers if t["kind"] == "resigned"}
    for ext, contact in sorted(s.contacts.items()):
        for userid in contact["follow"]:
            if userid in s.departed and (userid, ext) not in pending:
                rows.append({"handover_userid": userid, "external_userid": ext,
                             "dimission_time": s.departed[userid]})
    chunk, cursor = page(rows, body.get("cursor") or "", s.size(1000, body.get("page_size"), 1000))
    return ok(info=chunk, is_last=not cursor, next_cursor=cursor)


def _chat_transfer(s: SimState, body: Body, resigned: bool) -> dict[str, Any]:
    chat_ids, new_owner = _list(body, "chat_id_list"), body.get("new_owner") or ""
    if not 1 <= len(chat_ids) <= MAX_PER_CALL:
        raise bad(f"chat_id_list must hold 1-{MAX_PER_CALL} chat ids")
    if not new_owner or new_owner in s.departed:
        raise bad("new_owner must be an active member")
    failed = []
    for chat_id in chat_ids:
        chat = s.chats.get(chat_id)
        if chat is None:
            failed.append({"chat_id": chat_id, "errcode": 40050, "errmsg": "chat_id not found"})
        elif resigned and chat["owner"] not in s.departed:
            failed.append({"chat_id": chat_id, "errcode": 90500, "errmsg": "owner has not resigned"})
        elif not resigned and chat["owner"] in s.departed:
            failed.append({"chat_id": chat_id, "errcode": 40058, "errmsg": "owner resigned: use groupchat/transfer"})
        else:
            chat["owner"] = new_owner
            chat["inherit"] = "done" if resigned else chat["inherit"]
            if not any(m["userid"] == new_owner for m in chat["member_list"]):
                s.chat_member(chat_id, new_owner, "add", member_type=1, join_scene=1)
    return ok(failed_chat_list=failed)


@api("POST", "cgi-bin/externalcontact/groupchat/transfer")
def groupchat_transfer(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    return _chat_transfer(s, body, resigned=True)


@api("POST", "cgi-bin/externalcontact/groupchat/onjob_transfer")
def groupchat_onjob_transfer(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    return _chat_transfer(s, body, resigned=False)


# --- group chats ----------------------------------------------------------------------------------
def _chat_status(s: SimState, chat: dict[str, Any]) -> int:
    if chat["inherit"] == "done":
        return 3
    if chat["inherit"] == "in_progress":
        return 2
    return 1 if chat["owner"] in s.departed else 0


@api("POST", "cgi-bin/externalcontact/groupchat/list")
def groupchat_list(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    status_filter = int(body.get("status_filter") or 0)
    if status_filter not in (0, 1, 2, 3):
        raise bad("status_filter must be 0-3")
    owners = (body.get("owner_filter") or {}).get("userid_list") or []
    if len(owners) > 100:
        raise bad("owner_filter.userid_list at most 100")
    limit = body.get("limit")
    if limit is None or not 1 <= int(limit) <= 1000:
        raise bad("limit must be 1-1000")
    rows = []
    for chat in sorted(s.chats.values(), key=lambda c: (c["create_time"], c["chat_id"])):
        status = _chat_status(s, chat)
        if status_filter and status != status_filter:
            continue
        if owners and chat["owner"] not in owners:
            continue
        rows.append({"chat_id": chat["chat_id"], "status": status})
    chunk, cursor = page(rows, body.get("cursor") or "", s.size(int(limit)))
    return ok(group_chat_list=chunk, next_cursor=cursor)


@api("POST", "cgi-bin/externalcontact/groupchat/get")
def groupchat_get(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    chat = s.chats.get(body.get("chat_id") or "")
    if chat is None:
        raise SimError(40050, "chat_id not found")
    members = []
    for m in chat["member_list"]:
        member = dict(m)
        if body.get("need_name") and m["type"] == 2:
            contact = s.contacts.get(m["userid"])
            member["group_nickname"] = member["name"] = contact["name"] if contact else ""
        members.append(member)
    detail = {k: chat[k] for k in ("chat_id", "name", "owner", "create_time", "notice", "admin_list")}
    return ok(group_chat={**detail, "member_list": members, "member_version": str(len(members))})


# --- channel codes (联系我) and group join codes: one shared quota --------------------------------
def _new_way(s: SimState, kind: str, fields: dict[str, Any]) -> str:
    if len(s.ways) >= s.way_quota:
        raise bad(f"contact way quota of {s.way_quota} reached")
    config_id = s.new_id("cfg")
    s.ways[config_id] = {"config_id": config_id, "kind": kind, "create_time": int(s.now()), **fields}
    return config_id


def _way(s: SimState, body: Body, kind: str) -> dict[str, Any]:
    way = s.ways.get(body.get("config_id") or "")
    if way is None or way["kind"] != kind:
        raise bad("config_id not found")
    return way


@api("POST", "cgi-bin/externalcontact/add_contact_way")
def add_contact_way(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    if body.get("type") not in (1, 2) or body.get("scene") not in (1, 2):
        raise bad("type must be 1 or 2 and scene 1 or 2")
    users, parties = _list(body, "user"), _list(body, "party")
    if not users and not parties:
        raise bad("user or party is required")
    if body["type"] == 1 and len(users) + len(parties) != 1:
        raise bad("type 1 takes exactly one user")
    _state_ok(body.get("state"))
    config_id = _new_way(s, "contact", {k: v for k, v in body.items() if k != "config_id"})
    extra = {"qr_code": f"https://wework.qpic.cn/sim/{config_id}.png"} if body["scene"] == 2 else {}
    return ok(config_id=config_id, **extra)


@api("POST", "cgi-bin/externalcontact/update_contact_way")
def update_contact_way(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    way = _way(s, body, "contact")
    _state_ok(body.get("state"))
    way.update({k: v for k, v in body.items() if k != "config_id"})
    return ok()


@api("POST", "cgi-bin/externalcontact/del_contact_way")
def del_contact_way(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    _way(s, body, "contact")
    del s.ways[body["config_id"]]
    return ok()


def _join_way_fields(s: SimState, body: Body) -> dict[str, Any]:
    chat_ids = _list(body, "chat_id_list")
    if not 1 <= len(chat_ids) <= MAX_JOIN_WAY_CHATS:
        raise bad(f"chat_id_list must hold 1-{MAX_JOIN_WAY_CHATS} chat ids")
    if body.get("scene") not in (1, 2):
        raise bad("scene must be 1 or 2")
    _state_ok(body.get("state"))
    for chat_id in chat_ids:
        if chat_id not in s.chats:
            raise SimError(40050, f"chat_id not found: {chat_id}")
    return {k: v for k, v in body.items() if k != "config_id"}


@api("POST", "cgi-bin/externalcontact/groupchat/add_join_way")
def add_join_way(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    return ok(config_id=_new_way(s, "join", _join_way_fields(s, body)))


@api("POST", "cgi-bin/externalcontact/groupchat/get_join_way")
def get_join_way(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    way = _way(s, body, "join")
    return ok(join_way={k: v for k, v in way.items() if k != "kind"} | {"qr_code": f"https://wework.qpic.cn/sim/{way['config_id']}.png"})


@api("POST", "cgi-bin/externalcontact/groupchat/update_join_way")
def update_join_way(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    way = _way(s, body, "join")
    way.update(_join_way_fields(s, body))
    return ok()


@api("POST", "cgi-bin/externalcontact/groupchat/del_join_way")
def del_join_way(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    _way(s, body, "join")
    del s.ways[body["config_id"]]
    return ok()


# --- welcome message, customers, remarks ----------------------------------------------------------
@api("POST", "cgi-bin/externalcontact/send_welcome_msg")
def send_welcome_msg(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    code = s.welcome_codes.get(body.get("welcome_code") or "")
    if code is None:
        raise bad("welcome_code not found")
    if not body.get("text") and not body.get("attachments"):
        raise bad("text or attachments is required")
    if len(_list(body, "attachments")) > 9:
        raise bad("at most 9 attachments")
    if code["used"]:
        raise SimError(41051, "welcome code already used")
    if s.now() - code["issued_at"] > WELCOME_CODE_TTL:
        raise SimError(41051, "welcome code expired (20 seconds)")
    code["used"] = True
    code["message"] = {"text": body.get("text"), "attachments": body.get("attachments") or []}
    return ok()


@api("GET", "cgi-bin/externalcontact/get")
def get_external_contact(s: SimState, q: Query, _: Body) -> dict[str, Any]:
    contact = s.contacts.get(q.get("external_userid") or "")
    if contact is None or not contact["follow"]:
        raise SimError(84061, "not external contact")
    info = {k: contact[k] for k in ("external_userid", "name", "type", "gender", "avatar")}
    if contact.get("unionid"):
        info["unionid"] = contact["unionid"]
    follow = []
    for rel in contact["follow"].values():
        tags = []
        for tag_id in rel["tags"]:
            found = _find_tag(s, tag_id)
            if found:
                tags.append({"group_name": found[0]["group_name"], "tag_name": found[1]["name"], "tag_id": tag_id,
                             "type": 1})
        follow.append({**{k: v for k, v in rel.items() if k != "tags"}, "tags": tags})
    return ok(external_contact=info, follow_user=follow, next_cursor="")


@api("POST", "cgi-bin/externalcontact/remark")
def remark(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    rel = s.follow(body.get("external_userid") or "", body.get("userid") or "")
    if rel is None:
        raise SimError(84061, "not external contact")
    for field in ("remark", "description", "remark_company", "remark_mobiles"):
        if field in body:
            rel[field] = body[field]
    return ok()


@api("POST", "cgi-bin/externalcontact/unionid_to_external_userid")
def unionid_to_external_userid(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    if not body.get("unionid") or not body.get("openid"):
        raise bad("unionid and openid are required")
    for contact in s.contacts.values():
        if contact.get("unionid") == body["unionid"]:
            return ok(external_userid=contact["external_userid"])
    return ok(pending_id="p" + hashlib.sha256(body["unionid"].encode()).hexdigest()[:20])


# --- tags -----------------------------------------------------------------------------------------
def _find_tag(s: SimState, tag_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    for group in s.tag_groups.values():
        for tag in group["tag"]:
            if tag["id"] == tag_id:
                return group, tag
    return None


def _tag_count(s: SimState) -> int:
    return sum(len(g["tag"]) for g in s.tag_groups.values())


def _public_group(group: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in group.items() if k not in ("created_by", "tag")},
            "tag": [{k: v for k, v in t.items() if k != "created_by"} for t in group["tag"]]}


@api("POST", "cgi-bin/externalcontact/get_corp_tag_list")
def get_corp_tag_list(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    tag_ids, group_ids = set(_list(body, "tag_id")), set(_list(body, "group_id"))
    out = []
    for group in s.tag_groups.values():
        if group_ids and group["group_id"] not in group_ids:
            continue
        shown = _public_group(group)
        if tag_ids and not group_ids:
            shown["tag"] = [t for t in shown["tag"] if t["id"] in tag_ids]
            if not shown["tag"]:
                continue
        out.append(shown)
    return ok(tag_group=out)


@api("POST", "cgi-bin/externalcontact/add_corp_tag")
def add_corp_tag(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    tags = _list(body, "tag")
    if not tags or any(not (t or {}).get("name") for t in tags):
        raise bad("tag names are required")
    if _tag_count(s) + len(tags) > s.tag_cap:
        raise bad(f"corp tags at most {s.tag_cap}")
    now = int(s.now())
    group = s.tag_groups.get(body.get("group_id") or "")
    if body.get("group_id") and group is None:
        raise SimError(40068, "invalid tag group id")
    if group is None:
        group = next((g for g in s.tag_groups.values() if g["group_name"] == body.get("group_name")), None)
    if group is None:
        if not body.get("group_name"):
            raise bad("group_id or group_name is required")
        group_id = s.new_id("etsimgrp")
        group = s.tag_groups[group_id] = {"group_id": group_id, "group_name": body["group_name"], "create_time": now,
                                          "order": int(body.get("order") or 0), "created_by": "app", "tag": []}
    names = {t["name"] for t in group["tag"]}
    for tag in tags:
        if tag["name"] in names:
            raise SimError(40071, f"tag name exists: {tag['name']}")
        names.add(tag["name"])
    for tag in tags:
        group["tag"].append({"id": s.new_id("etsimtag"), "name": tag["name"], "create_time": now,
                             "order": int(tag.get("order") or 0), "created_by": "app"})
    return ok(tag_group=_public_group(group))


def _owned(s: SimState, any_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    group = s.tag_groups.get(any_id)
    if group is not None:
        if group["created_by"] != "app":
            raise SimError(60011, "no privilege: tag group not created by this app")
        return group, None
    found = _find_tag(s, any_id)
    if found is None:
        raise SimError(40068, "invalid tag id")
    if found[1]["created_by"] != "app":
        raise SimError(60011, "no privilege: tag not created by this app")
    return found


@api("POST", "cgi-bin/externalcontact/edit_corp_tag")
def edit_corp_tag(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    group, tag = _owned(s, body.get("id") or "")
    target = tag if tag is not None else group
    if body.get("name"):
        if tag is not None and any(t["name"] == body["name"] and t is not tag for t in group["tag"]):
            raise SimError(40071, "tag name exists")
        target["name" if tag is not None else "group_name"] = body["name"]
    if body.get("order") is not None:
        target["order"] = int(body["order"])
    return ok()


@api("POST", "cgi-bin/externalcontact/del_corp_tag")
def del_corp_tag(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    tag_ids, group_ids = _list(body, "tag_id"), _list(body, "group_id")
    if not tag_ids and not group_ids:
        raise bad("tag_id and group_id cannot both be empty")
    targets = [_owned(s, i) for i in tag_ids + group_ids]  # all checked before anything is deleted
    for group, tag in targets:
        if tag is None:
            s.tag_groups.pop(group["group_id"], None)
        elif tag in group["tag"]:
            group["tag"].remove(tag)
            if not group["tag"]:  # WeCom deletes a group with its last tag
                s.tag_groups.pop(group["group_id"], None)
    return ok()


@api("POST", "cgi-bin/externalcontact/mark_tag")
def mark_tag(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    add, remove = _list(body, "add_tag"), _list(body, "remove_tag")
    if not add and not remove:
        raise bad("add_tag and remove_tag cannot both be empty")
    rel = s.follow(body.get("external_userid") or "", body.get("userid") or "")
    if rel is None:
        raise SimError(84061, "not external contact")
    for tag_id in add + remove:
        if _find_tag(s, tag_id) is None:
            raise SimError(40068, f"invalid tag id: {tag_id}")
    rel["tags"] = [t for t in rel["tags"] if t not in remove] + [t for t in add if t not in rel["tags"]]
    return ok()


# --- mass messages (群发) -------------------------------------------------------------------------
@api("POST", "cgi-bin/externalcontact/add_msg_template")
def add_msg_template(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    chat_type = body.get("chat_type") or "single"
    if chat_type not in ("single", "group"):
        raise bad("chat_type must be single or group")
    if not (body.get("text") or {}).get("content") and not body.get("attachments"):
        raise bad("text or attachments is required")
    if len(_list(body, "attachments")) > 9:
        raise bad("at most 9 attachments")
    sender = body.get("sender") or ""
    results, fail_list = [], []
    if chat_type == "group":
        chat_ids = _list(body, "chat_id_list")
        if len(chat_ids) > MAX_MSG_CHATS:
            raise bad(f"chat_id_list at most {MAX_MSG_CHATS}")
        if not sender:
            raise bad("sender is required for group messages")
        chats = [c for c in s.chats.values() if c["owner"] == sender and (not chat_ids or c["chat_id"] in chat_ids)]
        results = [{"chat_id": c["chat_id"], "userid": sender, "status": 0} for c in chats]
    else:
        externals = _list(body, "external_userid")
        if len(externals) > 10000:
            raise bad("external_userid at most 10000")
        if not externals and sender:
            externals = [e for e, c in s.contacts.items() if sender in c["follow"]]
        for ext in externals:
            contact = s.contacts.get(ext)
            followers = list(contact["follow"]) if contact else []
            userid = sender if sender in followers else ("" if sender else (followers[0] if followers else ""))
            if not userid:
                fail_list.append(ext)
            else:
                results.append({"external_userid": ext, "userid": userid, "status": 0})
    msgid = s.new_id("msgsim")
    s.messages[msgid] = {"msgid": msgid, "creator": sender, "create_type": 0, "create_time": int(s.now()),
                         "chat_type": chat_type, "text": body.get("text"), "attachments": body.get("attachments") or [],
                         "results": results, "reminds": [],
                         "tasks": {r["userid"]: {"userid": r["userid"], "status": 0} for r in results}}
    return ok(fail_list=fail_list, msgid=msgid)


def confirm_groupmsg(s: SimState, msgid: str, userid: str) -> dict[str, Any]:
    """The staff member taps 发送 in WeCom: nothing is sent before this (the driver calls it)."""
    msg = s.messages.get(msgid)
    if msg is None or userid not in msg["tasks"]:
        raise bad("no such mass message task")
    now = s.now()
    msg["tasks"][userid].update(status=2, send_time=int(now))
    month, days = month_key(now)
    for r in msg["results"]:
        if r["userid"] != userid or r["status"] != 0:
            continue
        r["send_time"] = int(now)
        if "external_userid" not in r:
            r["status"] = 1
        elif s.follow(r["external_userid"], userid) is None:
            r["status"] = 2  # no longer a contact
        elif s.monthly_received.get((r["external_userid"], month), 0) >= days:
            r["status"] = 3  # this month's quota (days in month) already received
        else:
            s.monthly_received[(r["external_userid"], month)] = s.monthly_received.get((r["external_userid"], month), 0) + 1
            r["status"] = 1
    return ok(results=msg["results"])


@api("POST", "cgi-bin/externalcontact/get_groupmsg_list_v2")
def get_groupmsg_list_v2(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    start, end = int(body.get("start_time") or 0), int(body.get("end_time") or 0)
    if not start or not end or end < start or end - start > 31 * 86400:
        raise bad("start_time/end_time must span at most one month")
    chat_type = body.get("chat_type") or "single"
    rows = [{"msgid": m["msgid"], "creator": m["creator"], "create_type": m["create_type"],
             "create_time": str(m["create_time"]), "text": m["text"], "attachments": m["attachments"]}
            for m in s.messages.values()
            if m["chat_type"] == chat_type and start <= m["create_time"] <= end
            and (not body.get("creator") or m["creator"] == body["creator"])]
    chunk, cursor = page(rows, body.get("cursor") or "", s.size(50, body.get("limit"), 100))
    return ok(group_msg_list=chunk, next_cursor=cursor)


def _msg(s: SimState, body: Body) -> dict[str, Any]:
    msg = s.messages.get(body.get("msgid") or "")
    if msg is None:
        raise bad("msgid not found")
    return msg


@api("POST", "cgi-bin/externalcontact/get_groupmsg_task")
def get_groupmsg_task(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    rows = list(_msg(s, body)["tasks"].values())
    chunk, cursor = page(rows, body.get("cursor") or "", s.size(500, body.get("limit"), 1000))
    return ok(task_list=chunk, next_cursor=cursor)


@api("POST", "cgi-bin/externalcontact/get_groupmsg_send_result")
def get_groupmsg_send_result(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    rows = [r for r in _msg(s, body)["results"] if r["userid"] == body.get("userid")]
    chunk, cursor = page(rows, body.get("cursor") or "", s.size(500, body.get("limit"), 1000))
    return ok(send_list=chunk, next_cursor=cursor)


@api("POST", "cgi-bin/externalcontact/remind_groupmsg_send")
def remind_groupmsg_send(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    msg = _msg(s, body)
    recent = [t for t in msg["reminds"] if t > s.now() - 86400]
    if len(recent) >= MAX_REMINDS:
        raise bad(f"at most {MAX_REMINDS} reminders in 24 hours")
    msg["reminds"].append(s.now())
    return ok()


# --- app messages, group robot, mini-program login -------------------------------------------------
@api("POST", "cgi-bin/message/send")
def message_send(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    touser = [u for u in str(body.get("touser") or "").split("|") if u]
    msgtype = body.get("msgtype")
    if not touser or not msgtype or msgtype not in body:
        raise bad("touser, msgtype and its content are required")
    invalid = [u for u in touser if u in s.departed]
    msgid = s.new_id("appmsg")
    s.app_messages.append({"msgid": msgid, "at": s.now(), "touser": touser, "msgtype": msgtype,
                           "agentid": body.get("agentid"), "content": body[msgtype]})
    return ok(invaliduser="|".join(invalid), msgid=msgid)


# --- internal group chats made by the app (appchat) -------------------------------------------------
APPCHAT_ID = re.compile(r"^[0-9A-Za-z]{1,32}$")
APPCHAT_MSGTYPES = {"text", "markdown", "textcard", "news", "image", "file"}
MAX_APPCHAT_MEMBERS = 2000
MAX_APPCHAT_CONTENT = 2048  # bytes of a text or markdown message


@api("POST", "cgi-bin/appchat/create")
def appchat_create(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    """2–2000 distinct members, none departed; an owner among them (else the first); a chatid of at most 32
    letters and digits that no chat has yet (else 86215); the name cut at 50 characters."""
    users = [str(u) for u in _list(body, "userlist") if u]
    if len(set(users)) != len(users) or not 2 <= len(users) <= MAX_APPCHAT_MEMBERS:
        raise SimError(86006, "invalid chat member list size")
    if any(u in s.departed for u in users):
        raise SimError(86007, "invalid chat member")
    owner = body.get("owner") or users[0]
    if owner not in users:
        raise SimError(86005, "invalid owner")
    chatid = body.get("chatid") or s.new_id("wrappchat").replace("_", "")
    if not APPCHAT_ID.match(str(chatid)):
        raise SimError(86001, "invalid chatid")
    if chatid in s.appchats:
        raise SimError(86215, "chatid already exists")
    s.appchats[chatid] = {"chatid": chatid, "name": str(body.get("name") or "")[:50], "owner": owner,
                          "userlist": users, "create_time": int(s.now())}
    return ok(chatid=chatid)


@api("GET", "cgi-bin/appchat/get")
def appchat_get(s: SimState, q: Query, _: Body) -> dict[str, Any]:
    chat = s.appchats.get(str(q.get("chatid") or ""))
    if chat is None:
        raise SimError(86003, "chatid not exists")
    return ok(chat_info={k: chat[k] for k in ("chatid", "name", "owner", "userlist")})


@api("POST", "cgi-bin/appchat/send")
def appchat_send(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    """Only into a chat this app created; text and markdown at most 2,048 bytes."""
    chat = s.appchats.get(str(body.get("chatid") or ""))
    if chat is None:
        raise SimError(86003, "chatid not exists")
    msgtype = body.get("msgtype")
    if msgtype not in APPCHAT_MSGTYPES or not isinstance(body.get(msgtype), dict):
        raise bad("msgtype and its content are required")
    content = body[msgtype].get("content")
    if msgtype in ("text", "markdown"):
        if not content:
            raise SimError(44004, "empty content")
        if len(str(content).encode()) > MAX_APPCHAT_CONTENT:
            raise SimError(45002, "content size out of limit")
    s.appchat_messages.append({"at": s.now(), "chatid": chat["chatid"], "msgtype": msgtype, "content": body[msgtype],
                               "safe": body.get("safe", 0)})
    return ok()


@api("POST", "cgi-bin/webhook/send")
def webhook_send(s: SimState, q: Query, body: Body) -> dict[str, Any]:
    if not q.get("key"):
        raise SimError(93000, "invalid webhook url")
    msgtype = body.get("msgtype")
    if not msgtype or msgtype not in body:
        raise bad("msgtype and its content are required")
    s.webhook_messages.append({"at": s.now(), "key": q["key"][:6] + "…", "msgtype": msgtype,
                               "content": body[msgtype]})
    return ok()


@api("GET", "sns/jscode2session")
def jscode2session(s: SimState, q: Query, _: Body) -> dict[str, Any]:
    """Any js_code works once; ``alice:anything`` always maps to the same openid for identity "alice"."""
    code = q.get("js_code") or ""
    if not q.get("appid") or not q.get("secret") or not code or code.startswith("invalid"):
        raise SimError(40029, "invalid code")
    if code in s.used_js_codes:
        raise SimError(40163, "code been used")
    s.used_js_codes.add(code)
    identity = code.split(":", 1)[0]
    openid, unionid = simulators.wechat_mp_identity(q["appid"], identity)
    return {"openid": openid, "session_key": derived_session_key(identity), "unionid": unionid}
