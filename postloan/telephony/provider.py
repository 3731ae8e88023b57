"""The telephony provider interface, and the HTTP adapter that implements it.

The domain code sees only :class:`TelephonyProvider`:

- ``dial(DialRequest)``: click-to-call (点击外呼). The call center rings the collector's seat first, then
  the customer, and answers at once with its own call id; the outcome follows by callback.
- ``dial_batch([DialRequest, …])``: a batch dial list (批量外呼), one request; the call center works
  through it and calls back for each entry. Answers one :class:`DialAccepted` (or refusal) per entry.

The callback (``POST {base_url}/postloan/telephony/callback``, signed: :mod:`.signing`) carries JSON::

    {"event_id": "…", "out_call_no": "T…", "call_id": "…", "result": "answered|no_answer|busy|unreachable|
     rejected|failed", "duration_seconds": 73, "recording_url": "https://…", "started_at": "ISO-8601",
     "answered_at": "ISO-8601|null", "ended_at": "ISO-8601"}

**The adapter's shape.** :class:`HttpTelephonyProvider` speaks this JSON protocol over HTTPS with a
Bearer API key: ``POST {api_base}/v1/calls`` ``{"out_call_no", "callee", "caller", "callback_url"}`` →
``{"call_id"}``; ``POST {api_base}/v1/batches`` ``{"name", "calls": [...]}`` → ``{"calls": [{"out_call_no",
"call_id"} | {"out_call_no", "error"}]}``. The built-in simulator (``/_tel_sim``) serves exactly that. A
real call center (阿里云云呼叫中心, 容联七陌, 天润融通 …) is connected either by a small gateway that
speaks this protocol, or by another class implementing :class:`TelephonyProvider` that maps these calls
onto the vendor's API and whose callback relay signs results as :mod:`.signing` does; switch to it with
``SCRM_TELEPHONY_API_BASE``, ``SCRM_TELEPHONY_API_KEY`` and ``SCRM_TELEPHONY_CALLBACK_SECRET`` (README).
A failure to reach the provider raises :class:`~postloan.telephony.exceptions.ProviderUnavailable` (the
dial task retries); a refusal of one number is reported per entry and marks that call failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx

from postloan.telephony.exceptions import ProviderUnavailable


@dataclass(frozen=True)
class DialRequest:
    out_call_no: str
    callee: str  # the customer's number, plaintext: only ever between our server and the provider
    caller: str  # the collector's seat (agent id at the call center): our staff username
    callback_url: str


@dataclass(frozen=True)
class DialAccepted:
    out_call_no: str
    call_id: str | None  # None: refused (see error)
    error: str = ""


class TelephonyProvider(Protocol):
    name: str

    def dial(self, request: DialRequest) -> DialAccepted: ...

    def dial_batch(self, name: str, requests: list[DialRequest]) -> list[DialAccepted]: ...


class HttpTelephonyProvider:
    name = "http"

    def __init__(self, *, api_base: str, api_key: str, timeout: float = 10) -> None:
        self.api_base = api_base.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = timeout

    def _post(self, path: str, body: dict) -> dict:
        try:
            response = httpx.post(self.api_base + path, json=body, headers=self._headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(details=type(exc).__name__) from exc
        if response.status_code >= 500:
            raise ProviderUnavailable()
        data = response.json() if response.content else {}
        if response.status_code >= 400:
            return {"error": str(data.get("message") or f"HTTP {response.status_code}")}
        return data

    @staticmethod
    def _body(r: DialRequest) -> dict:
        return {"out_call_no": r.out_call_no, "callee": r.callee, "caller": r.caller, "callback_url": r.callback_url}

    def dial(self, request: DialRequest) -> DialAccepted:
        data = self._post("/v1/calls", self._body(request))
        if data.get("call_id"):
            return DialAccepted(request.out_call_no, str(data["call_id"]))
        return DialAccepted(request.out_call_no, None, str(data.get("error") or "呼叫中心拒绝了该呼叫"))

    def dial_batch(self, name: str, requests: list[DialRequest]) -> list[DialAccepted]:
        data = self._post("/v1/batches", {"name": name, "calls": [self._body(r) for r in requests]})
        if "error" in data and "calls" not in data:
            return [DialAccepted(r.out_call_no, None, str(data["error"])) for r in requests]
        answered = {str(c.get("out_call_no")): c for c in data.get("calls", [])}
        out = []
        for r in requests:
            c = answered.get(r.out_call_no) or {}
            out.append(DialAccepted(r.out_call_no, str(c["call_id"]) if c.get("call_id") else None,
                                    str(c.get("error") or ("" if c.get("call_id") else "呼叫中心未受理"))))
        return out
