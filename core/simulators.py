"""The registry of built-in simulators, and production's refusal to run on them.

Each simulated outside service (WeCom, WeChat, and the payment and telephony simulators other packages
add) registers itself when its module is imported::

    simulators.register("payments", "微信支付（模拟器）", settings=("SCRM_WECHAT_PAY_MCH_ID", ...),
                        active=lambda s: not s.wechat_pay_api_key)

``active`` is asked with the current settings; ``settings`` are the variables to set so that the real
service is used. :func:`check` runs when the web service starts (after every channel's ``web`` module is
loaded, so every package's registration has happened): with ``SCRM_ENV=production`` and any simulator
active it refuses to start, naming what to set, unless ``SCRM_ALLOW_SIMULATORS=true`` declares a demo
deployment, which is announced loudly on the log and on stderr.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

from core.settings import Settings, get_settings

log = logging.getLogger(__name__)

__all__ = ["SimulatorInProduction", "Simulator", "active", "check", "register", "wechat_mp_identity"]


@dataclass(frozen=True)
class Simulator:
    key: str
    label: str  # what the operator reads: "企业微信 WeCom"
    settings: tuple[str, ...]  # environment variables that switch the real service on
    is_active: Callable[[Settings], bool]


class SimulatorInProduction(RuntimeError):
    """Production was asked to start with a simulated outside service."""


_registry: dict[str, Simulator] = {}


def register(key: str, label: str, *, settings: tuple[str, ...], active: Callable[[Settings], bool]) -> None:
    """Register (or replace, on re-import) the simulator ``key``."""
    _registry[key] = Simulator(key, label, tuple(settings), active)


def active(settings: Settings | None = None) -> list[Simulator]:
    s = settings or get_settings()
    return [sim for sim in _registry.values() if sim.is_active(s)]


def _describe(sims: list[Simulator]) -> str:
    return "; ".join(f"{sim.label} (set {', '.join(sim.settings)})" for sim in sims)


def check(settings: Settings | None = None) -> None:
    """Refuse production with an active simulator, unless the deployment says it is a demo."""
    s = settings or get_settings()
    if s.env != "production":
        return
    sims = active(s)
    if not sims:
        return
    if not s.allow_simulators:
        raise SimulatorInProduction(
            "SCRM_ENV=production refuses to start while outside services are simulated: "
            f"{_describe(sims)}. A simulator accepts any login code and any phone number, and its "
            "/_wecom_sim admin pages show customer data. Set the real credentials, or, for a demo "
            "deployment only, SCRM_ALLOW_SIMULATORS=true.")
    banner = ("!" * 78 + "\n"
              "!!! DEMO DEPLOYMENT: SCRM_ALLOW_SIMULATORS=true with SCRM_ENV=production.\n"
              f"!!! Simulated, not real: {_describe(sims)}.\n"
              "!!! Any mini-program login code is accepted. Never put real customers on this server.\n"
              + "!" * 78)
    log.warning("%s", banner)
    print(banner, file=sys.stderr, flush=True)


def _wecom_active(s: Settings) -> bool:
    return s.wecom_simulated


def _wechat_active(s: Settings) -> bool:
    return s.wechat_simulated


# The two simulators the kernel's settings already describe; packages register theirs on import.
register("wecom", "企业微信 WeCom", settings=("SCRM_WECOM_CORP_ID", "SCRM_WECOM_SECRET", "SCRM_WECOM_AGENT_ID",
                                              "SCRM_WECOM_TOKEN", "SCRM_WECOM_AES_KEY"), active=_wecom_active)
register("wechat_mp", "微信小程序 WeChat mini-program",
         settings=("SCRM_WECHAT_MP_APPID", "SCRM_WECHAT_MP_SECRET"), active=_wechat_active)


def wechat_mp_identity(appid: str, identity: str) -> tuple[str, str]:
    """(openid, unionid) the simulated WeChat answers for a ``wx.login`` code ``<identity>:<anything>`` of the
    mini-program ``appid``: the simulator's ``sns/jscode2session`` hands them out, the demo data seeds them."""
    digest = hashlib.sha256(f"{appid}:{identity}".encode()).hexdigest()
    return "osim" + digest[:24], "usim" + digest[24:48]
