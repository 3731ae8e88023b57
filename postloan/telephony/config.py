"""Where calls go: a real call center (``SCRM_TELEPHONY_API_BASE`` and its keys) or the built-in simulator.

With ``SCRM_TELEPHONY_API_BASE`` unset (``make run``, tests) the provider is the simulator mounted at
``{base_url}/_tel_sim`` with its own demo API key and callback secret (below: valid nowhere else).
Production refuses to start while telephony is simulated (registered with :mod:`core.simulators`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import time

from core import simulators
from core.settings import Settings, get_settings
from postloan.telephony.provider import HttpTelephonyProvider, TelephonyProvider

SIMULATOR_PREFIX = "/_tel_sim"
CALLBACK_PATH = "/postloan/telephony/callback"
SIM_API_KEY = "sim-telephony-api-key-0001"
SIM_CALLBACK_SECRET = "sim-telephony-callback-secret-0001"  # noqa: S105 - the simulator's demo key


@dataclass(frozen=True)
class TelephonyConfig:
    simulated: bool
    api_base: str
    api_key: str
    callback_secret: str
    callback_url: str
    window_seconds: int


def _simulated_by(s: Settings) -> bool:
    return not s.telephony_api_base or s.telephony_api_base.rstrip("/").endswith(SIMULATOR_PREFIX)


def simulated() -> bool:
    return _simulated_by(get_settings())


def get() -> TelephonyConfig:
    s = get_settings()
    base = s.base_url.rstrip("/")
    if _simulated_by(s):
        return TelephonyConfig(True, s.telephony_api_base or base + SIMULATOR_PREFIX, SIM_API_KEY, SIM_CALLBACK_SECRET,
                               base + CALLBACK_PATH, s.telephony_callback_window_seconds)
    missing = [f"SCRM_{name.upper()}" for name in ("telephony_api_key", "telephony_callback_secret")
               if not getattr(s, name)]
    if missing:
        raise RuntimeError(f"the call center needs {', '.join(missing)}")
    return TelephonyConfig(False, s.telephony_api_base.rstrip("/"), s.telephony_api_key, s.telephony_callback_secret,
                           base + CALLBACK_PATH, s.telephony_callback_window_seconds)


def call_hours(s: Settings | None = None) -> tuple[time, time]:
    """The permitted hours (Asia/Shanghai), from ``SCRM_TELEPHONY_CALL_HOURS`` ("08:00-21:00")."""
    raw = (s or get_settings()).telephony_call_hours
    try:
        start, end = (time.fromisoformat(part.strip()) for part in raw.split("-"))
    except ValueError:
        raise RuntimeError(f"SCRM_TELEPHONY_CALL_HOURS must read HH:MM-HH:MM, not {raw!r}") from None
    return start, end


_lock = threading.Lock()
_provider: TelephonyProvider | None = None


def provider() -> TelephonyProvider:
    """The process's provider: the HTTP adapter pointed at the call center or the simulator."""
    global _provider
    with _lock:
        if _provider is None:
            cfg = get()
            _provider = HttpTelephonyProvider(api_base=cfg.api_base, api_key=cfg.api_key)
        return _provider


def set_provider(value: TelephonyProvider | None) -> None:
    """Replace (or, with None, forget) the provider: after the settings changed (tests), or another adapter."""
    global _provider
    with _lock:
        _provider = value


# Production refuses to start while telephony is simulated (core.simulators.check at startup).
simulators.register("telephony", "外呼 Telephony", active=_simulated_by,
                    settings=("SCRM_TELEPHONY_API_BASE", "SCRM_TELEPHONY_API_KEY", "SCRM_TELEPHONY_CALLBACK_SECRET"))
