"""A real HTTP server with the WeCom simulator, for tests of anything that talks to WeCom.

Usage (tests/conftest.py registers this module as a plugin, so the fixture needs no import)::

    def test_something(session, wecom_server, task_runner):
        gw = Gateway(sleep=lambda s: None)          # talks to the simulator over real HTTP
        r = wecom_server.driver().add_external_contact("zhangsan", name="王先生", state="ch1")
        assert r.accepted                            # signed+encrypted callback accepted by /wecom/callback
        wecom_server.advance(hours=25)               # simulated time: transfers complete
        assert wecom_server.calls("externalcontact/transfer_customer")[0]["body"]["external_userid"] == [...]

One uvicorn server per test process (started on first use, 127.0.0.1, a free port, in a daemon
thread) serves ``core.web.create_app(start_tasks=False)``: ``/wecom/callback``, the console, and the
simulator at ``/_wecom_sim``. Requests use whatever database the test set up: with ``session`` the
server's units of work join the test's rolled-back transaction (fine for sequential requests); use
``committed`` when server and test run things at the same time. Tasks the server enqueues land in
the test's ``task_runner``.

The fixture points ``SCRM_WECOM_API_BASE`` at the simulator and ``SCRM_BASE_URL`` at the server
(settings, callback crypto and the default gateway are reset before and after), resets the
simulator, and yields a :class:`WecomServer` handle.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot import config, gateway
from bot.simulator.driver import Driver
from core.settings import reset_settings_cache

_lock = threading.Lock()
_server_url: str | None = None


def _start() -> str:
    global _server_url
    with _lock:
        if _server_url is not None:
            return _server_url
        import uvicorn

        from core.web import create_app

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(start_tasks=False), host="127.0.0.1", port=port,
                                               lifespan="off", log_level="warning", access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="wecom-sim-server",
                                  daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the WeCom simulator test server did not start")
            time.sleep(0.02)
        _server_url = f"http://127.0.0.1:{port}"
        return _server_url


class WecomServer:
    """Handle on the running server and its simulator (all over HTTP)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url  # the server: /wecom/callback, /console, …
        self.sim_url = base_url + config.SIMULATOR_PREFIX  # the fake WeCom API base (SCRM_WECOM_API_BASE)
        self.http = httpx.Client(timeout=10)

    def admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post(f"{self.sim_url}/_admin/{path}", json=body or {})
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Forget every token, request, contact, transfer … and the clock offset."""
        self.admin("reset")

    def requests(self, path: str = "") -> list[dict[str, Any]]:
        """Every API request the simulator received (optionally those whose path contains ``path``):
        dicts with seq, at, method, path ("cgi-bin/…"), query (secrets shortened), body, errcode."""
        response = self.http.get(f"{self.sim_url}/_admin/requests", params={"path": path})
        response.raise_for_status()
        return response.json()["requests"]

    def calls(self, path: str) -> list[dict[str, Any]]:
        """Requests whose path ends with ``path`` (e.g. "gettoken", "externalcontact/transfer_customer")."""
        return [r for r in self.requests(path) if r["path"].endswith(path)]

    def state(self) -> dict[str, Any]:
        """The whole simulated corp: contacts, transfers (with status), chats, tags, ways, messages …"""
        response = self.http.get(f"{self.sim_url}/_admin/state")
        response.raise_for_status()
        return response.json()

    def now(self) -> float:
        return float(self.http.get(f"{self.sim_url}/_admin/clock").json()["now"])

    def advance(self, seconds: float = 0, *, hours: float = 0, days: float = 0) -> None:
        """Move the simulator's clock forward (transfers, welcome codes, tokens, monthly limits)."""
        self.admin("advance", {"seconds": seconds + hours * 3600 + days * 86400})

    def expire_tokens(self) -> None:
        """Every access token issued so far now answers 42001."""
        self.admin("expire_tokens")

    def arm(self, errcode: int, times: int = 1, path: str | None = None) -> None:
        """The next ``times`` API calls (whose path contains ``path``, if given) answer ``errcode``."""
        self.admin("arm", {"errcode": errcode, "times": times, "path": path})

    def configure(self, **limits: Any) -> None:
        """Shrink limits for a test: page_size (cursor pages), way_quota (联系我 + 加入群聊), tag_cap."""
        self.admin("config", limits)

    def transfer_outcome(self, external_userid: str, outcome: str) -> None:
        """"refuse" (status 3), "limit" (status 4) or "" (taken over after 24 h) for that customer."""
        self.admin("transfer_outcome", {"external_userid": external_userid, "outcome": outcome})

    def driver(self) -> Driver:
        """Plays WeCom's side: signed, encrypted callbacks to this server's /wecom/callback."""
        return Driver(sim_base=self.sim_url, callback_url=self.base_url + "/wecom/callback")


def _reset_caches() -> None:
    reset_settings_cache()
    config.reset()
    gateway.reset()
    # The simulator forgets its tokens on reset; so must the shared token cache (Redis outlives tests).
    redis_url = os.environ.get("SCRM_REDIS_URL")
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter("scrm:wecom:token:*"))
        if keys:
            client.delete(*keys)


@pytest.fixture
def wecom_server() -> Iterator[WecomServer]:
    base = _start()
    saved = {k: os.environ.get(k) for k in ("SCRM_WECOM_API_BASE", "SCRM_BASE_URL")}
    os.environ["SCRM_WECOM_API_BASE"] = base + config.SIMULATOR_PREFIX
    os.environ["SCRM_BASE_URL"] = base
    _reset_caches()
    handle = WecomServer(base)
    handle.reset()
    try:
        yield handle
    finally:
        handle.http.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _reset_caches()
