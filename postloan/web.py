"""The post-loan package's HTTP edge (found by core.plugins): the telephony callback endpoint and simulator."""

from __future__ import annotations

from typing import Any


def mount(app: Any) -> None:
    from postloan.telephony import web as telephony_web

    telephony_web.mount(app)
