"""The call-center simulator's HTTP face, mounted at ``/_tel_sim``: the provider API (``/v1/…``, Bearer API
key required), recordings, the ``/_admin/…`` controls (direct loopback only) and the console page 外呼模拟器.

| admin endpoint | does |
|---|---|
| ``POST /_admin/reset`` | forget every call and delivery |
| ``POST /_admin/config {"auto_complete", "complete_delay", "default_outcome", "default_duration"}`` | finish calls by themselves after a delay, or not |
| ``POST /_admin/complete {"call" (call id or out_call_no), "outcome", "duration", "notify": true}`` | the call ends so; its callback is sent now |
| ``POST /_admin/callback {"call", "copies": 1, "forge": ""\\|"signature"\\|"stale"\\|"body"}`` | (re)send the callback: duplicates (same event id) and forgeries |
| ``GET /_admin/state`` | everything, as JSON |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from core import console_shell
from core.security import constant_time_equals, is_direct_loopback
from postloan.telephony.config import SIM_API_KEY
from postloan.telephony.models import RESULT_LABELS
from postloan.telephony.simulator.state import STATE, SimError, SimTelState, silent_wav

_templates = Environment(loader=FileSystemLoader([Path(__file__).parent / "templates", console_shell.TEMPLATE_DIR]),
                         autoescape=select_autoescape(["html"]))


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}{request.scope.get('root_path', '')}"


def _authorized(request: Request) -> None:
    header = request.headers.get("authorization", "")
    if not constant_time_equals(header, f"Bearer {SIM_API_KEY}"):
        raise HTTPException(status_code=401, detail="API key 不正确")


def _direct_loopback_only(request: Request) -> None:
    """The simulator's controls (finish a call, forge a callback, read its state) answer this machine only."""
    if not is_direct_loopback(request.client.host if request.client else None, request.headers):
        raise HTTPException(status_code=403, detail="外呼模拟器的控制接口只接受本机访问")


api = APIRouter(prefix="/v1", dependencies=[Depends(_authorized)])
admin = APIRouter(prefix="/_admin", dependencies=[Depends(_direct_loopback_only)])


def _error(exc: SimError) -> JSONResponse:
    return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)


@api.post("/calls", include_in_schema=False)
def _dial(request: Request, body: dict[str, Any]) -> JSONResponse:
    try:
        with STATE.lock:
            call = STATE.accept(body)
            auto, delay = STATE.auto_complete, STATE.complete_delay
    except SimError as exc:
        return _error(exc)
    if auto:
        STATE.complete_later(call["call_id"], delay, _base(request))
    return JSONResponse({"call_id": call["call_id"], "out_call_no": call["out_call_no"]})


@api.post("/batches", include_in_schema=False)
def _batch(request: Request, body: dict[str, Any]) -> JSONResponse:
    answers, accepted = [], []
    with STATE.lock:
        name = str(body.get("name") or "")
        for entry in body.get("calls") or []:
            try:
                call = STATE.accept(entry if isinstance(entry, dict) else {}, batch=name)
                answers.append({"out_call_no": call["out_call_no"], "call_id": call["call_id"]})
                accepted.append(call["call_id"])
            except SimError as exc:
                answers.append({"out_call_no": str((entry or {}).get("out_call_no", "")), "error": exc.message})
        auto, delay = STATE.auto_complete, STATE.complete_delay
    if auto:  # a power dialer works through the list one after the other
        for i, call_id in enumerate(accepted):
            STATE.complete_later(call_id, delay * (i + 1), _base(request))
    return JSONResponse({"calls": answers})


async def _recording(call_id: str) -> Response:
    with STATE.lock:
        call = STATE.calls.get(call_id.removesuffix(".wav"))
    if call is None or call.get("outcome") != "answered":
        return JSONResponse({"code": "NOT_FOUND", "message": "录音不存在"}, status_code=404)
    return Response(silent_wav(), media_type="audio/wav")


def _send(s: SimTelState, call: dict[str, Any], *, copies: int = 1, forge: str = "") -> list[int]:
    if call["state"] != "finished":
        raise SimError(400, "CALL_NOT_FINISHED", "通话尚未结束，没有回调可发")
    statuses = []
    for _ in range(max(1, min(copies, 20))):
        with s.lock:
            event_id = None if forge else (s.sent.get(call["call_id"]) or {}).get("event_id")
            headers, body = s.build_callback(call, event_id=event_id, forge=forge)
        statuses.append(s.deliver(call["callback_url"], headers, body, forge or "回调", call["out_call_no"]))
    return statuses


def _admin(path: str) -> Any:
    def register(fn: Any) -> Any:
        def endpoint(request: Request, body: dict[str, Any] | None = None) -> JSONResponse:
            try:
                result = fn(STATE, body or {}, _base(request))
            except SimError as exc:
                return _error(exc)
            except (KeyError, TypeError, ValueError) as exc:
                return JSONResponse({"code": "PARAM_ERROR", "message": str(exc)}, status_code=400)
            return JSONResponse({"code": "OK", **(result or {})})

        admin.add_api_route(path, endpoint, methods=["POST"], include_in_schema=False)
        return fn

    return register


@_admin("/reset")
def _reset(s: SimTelState, _: dict[str, Any], base: str) -> dict[str, Any]:
    s.reset()
    return {}


@_admin("/config")
def _config(s: SimTelState, body: dict[str, Any], base: str) -> dict[str, Any]:
    with s.lock:
        if "auto_complete" in body:
            s.auto_complete = bool(body["auto_complete"])
        if "complete_delay" in body:
            s.complete_delay = float(body["complete_delay"])
        if "default_outcome" in body:
            s.default_outcome = str(body["default_outcome"])
        if "default_duration" in body:
            s.default_duration = int(body["default_duration"])
    return {"auto_complete": s.auto_complete}


@_admin("/complete")
def _complete(s: SimTelState, body: dict[str, Any], base: str) -> dict[str, Any]:
    with s.lock:
        call = s.call(str(body["call"]))
        duration = body.get("duration")
        s.finish(call, str(body.get("outcome", "answered")), None if duration is None else int(duration), base)
    statuses = _send(s, call) if body.get("notify", True) else []
    return {"call_id": call["call_id"], "deliveries": statuses}


@_admin("/callback")
def _callback(s: SimTelState, body: dict[str, Any], base: str) -> dict[str, Any]:
    with s.lock:
        call = s.call(str(body["call"]))
    return {"deliveries": _send(s, call, copies=int(body.get("copies", 1)), forge=str(body.get("forge", "")))}


@admin.get("/state", include_in_schema=False)
def _state() -> JSONResponse:
    with STATE.lock:
        return JSONResponse(STATE.snapshot())


def console(request: Request) -> HTMLResponse:
    with STATE.lock:
        calls = sorted(STATE.calls.values(), key=lambda c: c["created"], reverse=True)[:100]
        deliveries = list(reversed(STATE.deliveries[-30:]))
        page = _templates.get_template("tel_simulator.html").render(
            calls=calls, deliveries=deliveries, results=RESULT_LABELS, auto_complete=STATE.auto_complete,
            delay=STATE.complete_delay, prefix=request.scope.get("root_path", ""))
    return HTMLResponse(page)


def create_simulator_app() -> FastAPI:
    app = FastAPI(title="Telephony simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(api)
    app.include_router(admin)
    app.add_api_route("/recordings/{call_id}", _recording, methods=["GET"], include_in_schema=False)
    app.add_api_route("/", console, methods=["GET"], include_in_schema=False)
    return app
