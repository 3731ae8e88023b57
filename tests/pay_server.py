"""The WeChat Pay simulator over real HTTP, for tests of anything that moves money.

The fixture ``pay_server`` (registered as a plugin in tests/conftest.py) uses the same uvicorn server
as ``wecom_server`` (``core.web.create_app``: ``/payments/wechat/notify`` and the simulator at
``/_pay_sim``), points ``SCRM_BASE_URL`` at it (so orders carry its notify URL), resets the payment
config and the simulator, and turns the simulator's own notifications off: a test sends them with
:meth:`PayServer.pay` / :meth:`PayServer.notify`, synchronously, so the server's unit of work never runs
beside the test's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from payments import config


class PayServer:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.sim_url = base_url + config.SIMULATOR_PREFIX
        self.notify_url = base_url + config.NOTIFY_PATH
        self.http = httpx.Client(timeout=30)

    def admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post(f"{self.sim_url}/_admin/{path}", json=body or {})
        assert response.status_code == 200, response.text
        return response.json()

    def pay(self, out_trade_no: str, outcome: str = "success", *, notify: bool = True, **extra: Any) -> dict[str, Any]:
        return self.admin("pay", {"out_trade_no": out_trade_no, "outcome": outcome, "notify": notify, **extra})

    def notify(self, out_trade_no: str, **options: Any) -> list[int]:
        return self.admin("notify", {"out_trade_no": out_trade_no, **options})["deliveries"]

    def state(self) -> dict[str, Any]:
        return self.http.get(f"{self.sim_url}/_admin/state").json()

    def sim_order(self, out_trade_no: str) -> dict[str, Any]:
        return next(o for o in self.state()["orders"] if o["out_trade_no"] == out_trade_no)

    def requests(self, path: str = "") -> list[dict[str, Any]]:
        return self.http.get(f"{self.sim_url}/_admin/requests", params={"path": path}).json()["requests"]


@pytest.fixture
def pay_server(wecom_server) -> Iterator[PayServer]:
    config.reset()
    handle = PayServer(wecom_server.base_url)
    handle.admin("reset")
    handle.admin("config", {"auto_notify": False})
    try:
        yield handle
    finally:
        handle.http.close()
        config.reset()
