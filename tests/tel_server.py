"""The call-center simulator over real HTTP, for tests of calls.

The fixture ``tel_server`` (a plugin of tests/conftest.py) uses the ``wecom_server`` uvicorn server
(``core.web.create_app``: ``/postloan/telephony/callback`` and the simulator at ``/_tel_sim``), whose
fixture points ``SCRM_BASE_URL`` at it (so calls carry its callback URL); it forgets the cached provider,
resets the simulator and turns its self-completion off: a test ends calls with :meth:`TelServer.complete`,
synchronously, so the server's unit of work never runs beside the test's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from postloan.telephony import config


class TelServer:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.sim_url = base_url + config.SIMULATOR_PREFIX
        self.callback_url = base_url + config.CALLBACK_PATH
        self.http = httpx.Client(timeout=30)

    def admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post(f"{self.sim_url}/_admin/{path}", json=body or {})
        assert response.status_code == 200, response.text
        return response.json()

    def complete(self, out_call_no: str, outcome: str = "answered", **extra: Any) -> list[int]:
        return self.admin("complete", {"call": out_call_no, "outcome": outcome, **extra})["deliveries"]

    def callback(self, out_call_no: str, **options: Any) -> list[int]:
        return self.admin("callback", {"call": out_call_no, **options})["deliveries"]

    def state(self) -> dict[str, Any]:
        return self.http.get(f"{self.sim_url}/_admin/state").json()

    def sim_call(self, out_call_no: str) -> dict[str, Any]:
        return next(c for c in self.state()["calls"] if c["out_call_no"] == out_call_no)


@pytest.fixture
def tel_server(wecom_server) -> Iterator[TelServer]:
    config.set_provider(None)
    handle = TelServer(wecom_server.base_url)
    handle.admin("reset")
    handle.admin("config", {"auto_complete": False})
    try:
        yield handle
    finally:
        handle.http.close()
        config.set_provider(None)
