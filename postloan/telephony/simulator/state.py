"""The simulated call center: calls it accepted, their outcomes, and the callbacks it sent. One in-memory
state per process, guarded by a lock."""

from __future__ import annotations

import io
import json
import secrets
import threading
import time
import wave
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from core import pii
from postloan.telephony import signing
from postloan.telephony.config import SIM_CALLBACK_SECRET

OUTCOMES = ("answered", "no_answer", "busy", "unreachable", "rejected", "failed")


class SimError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class SimTelState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.calls: dict[str, dict[str, Any]] = {}  # call_id -> call
            self.by_out_no: dict[str, str] = {}
            self.deliveries: list[dict[str, Any]] = []
            self.sent: dict[str, dict[str, Any]] = {}  # call_id -> last callback (event id, body)
            self.auto_complete = True
            self.complete_delay = 3.0
            self.default_outcome = "answered"
            self.default_duration = 75

    @staticmethod
    def now() -> float:
        return time.time()

    def accept(self, data: dict[str, Any], batch: str = "") -> dict[str, Any]:
        no, callee = str(data.get("out_call_no") or ""), str(data.get("callee") or "")
        if not no or len(no) > 32:
            raise SimError(400, "PARAM_ERROR", "out_call_no 不正确")
        if not callee.isdigit() or not 7 <= len(callee) <= 15:
            raise SimError(400, "INVALID_NUMBER", "被叫号码格式不正确")
        if not str(data.get("callback_url") or "").startswith(("http://", "https://")):
            raise SimError(400, "PARAM_ERROR", "缺少 callback_url")
        existing = self.by_out_no.get(no)
        if existing:  # the same call asked for twice: the same answer
            return self.calls[existing]
        call_id = "SIMCALL" + secrets.token_hex(8).upper()
        call = {"call_id": call_id, "out_call_no": no, "callee_masked": pii.mask_phone(callee),
                "caller": str(data.get("caller") or ""), "callback_url": str(data["callback_url"]),
                "batch": batch, "state": "ringing", "outcome": None, "duration": 0,
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"), "created": self.now()}
        self.calls[call_id] = call
        self.by_out_no[no] = call_id
        return call

    def call(self, ref: str) -> dict[str, Any]:
        call = self.calls.get(ref) or self.calls.get(self.by_out_no.get(ref, ""))
        if call is None:
            raise SimError(404, "CALL_NOT_EXIST", "呼叫不存在")
        return call

    def finish(self, call: dict[str, Any], outcome: str, duration: int | None, base: str) -> None:
        if outcome not in OUTCOMES:
            raise SimError(400, "PARAM_ERROR", f"outcome: {' | '.join(OUTCOMES)}")
        if call["state"] == "finished":
            return
        started = datetime.fromisoformat(call["started_at"])
        seconds = (self.default_duration if duration is None else max(0, int(duration))) if outcome == "answered" else 0
        call.update(state="finished", outcome=outcome, duration=seconds,
                    answered_at=(started + timedelta(seconds=8)).isoformat(timespec="seconds")
                    if outcome == "answered" else None,
                    ended_at=(started + timedelta(seconds=8 + seconds)).isoformat(timespec="seconds"),
                    recording_url=f"{base}/recordings/{call['call_id']}.wav" if outcome == "answered" else None)

    def build_callback(self, call: dict[str, Any], *, event_id: str | None = None, forge: str = "",
                       ) -> tuple[dict[str, str], bytes]:
        event_id = event_id or "EV" + secrets.token_hex(12)
        payload = {"event_id": event_id, "out_call_no": call["out_call_no"], "call_id": call["call_id"],
                   "result": call["outcome"], "duration_seconds": call["duration"],
                   "recording_url": call.get("recording_url"), "started_at": call["started_at"],
                   "answered_at": call.get("answered_at"), "ended_at": call.get("ended_at")}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(self.now()) - (3600 if forge == "stale" else 0))
        headers = signing.headers_for(SIM_CALLBACK_SECRET, body, timestamp=timestamp, nonce=secrets.token_hex(12))
        if forge == "signature":
            headers["X-Telephony-Signature"] = signing.sign("not-the-secret", timestamp,
                                                            headers["X-Telephony-Nonce"], body)
        elif forge == "body":
            body = body.replace(b'"result":"', b'"result":"x', 1)
        elif forge and forge != "stale":
            raise SimError(400, "PARAM_ERROR", f"unknown forgery {forge}")
        if not forge:
            self.sent[call["call_id"]] = {"event_id": event_id}
        return headers, body

    def deliver(self, url: str, headers: dict[str, str], body: bytes, label: str, out_call_no: str) -> int:
        try:
            status = httpx.post(url, content=body, headers=headers, timeout=10).status_code
        except httpx.HTTPError:
            status = 0
        with self.lock:
            self.deliveries.append({"at": self.now(), "label": label, "status": status, "out_call_no": out_call_no})
        return status

    def complete_later(self, call_id: str, delay: float, base: str) -> None:
        def fire() -> None:
            with self.lock:
                call = self.calls.get(call_id)
                if call is None or call["state"] != "ringing":
                    return
                self.finish(call, self.default_outcome, None, base)
                headers, body = self.build_callback(call)
            self.deliver(call["callback_url"], headers, body, "回调", call["out_call_no"])

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        timer.start()

    def snapshot(self) -> dict[str, Any]:
        return {"calls": list(self.calls.values()), "deliveries": self.deliveries[-200:],
                "auto_complete": self.auto_complete, "complete_delay": self.complete_delay,
                "default_outcome": self.default_outcome}


def silent_wav(seconds: float = 1.0) -> bytes:
    """A short silent recording (8 kHz mono), what the simulator 'recorded'."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80" * int(8000 * seconds))
    return out.getvalue()


STATE = SimTelState()
