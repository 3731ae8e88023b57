"""Where payments go: the real WeChat Pay (credentials in settings) or the built-in simulator.

With ``SCRM_WECHATPAY_MCHID`` unset (``make run``, tests) the provider is the simulator mounted at
``{base_url}/_pay_sim``, with the simulator's own merchant and platform keys (committed under
``payments/simulator/keys``: demo keys, never valid anywhere else). Production must not run so
(:func:`payments.simulator.is_active`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from core import simulators
from core.settings import Settings, get_settings
from payments.provider import Provider

SIMULATOR_PREFIX = "/_pay_sim"
NOTIFY_PATH = "/payments/wechat/notify"
KEY_DIR = Path(__file__).parent / "simulator" / "keys"

SIM_MCHID = "1900000109"
SIM_APPID = "wx5imu1a7edemo0001"
SIM_SERIAL_NO = "5157F09EFDC096DE15EBE81A47057A72SIMULAT"
SIM_APIV3_KEY = "SimulatorApiV3Key000000000000001"  # 32 bytes
SIM_PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001092025SIMULATOR01"


@dataclass(frozen=True)
class PayConfig:
    simulated: bool
    mchid: str
    appid: str
    serial_no: str
    private_key_pem: str
    apiv3_key: str
    platform_public_key_pem: str
    platform_public_key_id: str
    api_base: str
    notify_url: str
    window_seconds: int

    @cached_property
    def platform_public_key(self) -> RSAPublicKey:
        key = load_pem_public_key(self.platform_public_key_pem.encode())
        assert isinstance(key, RSAPublicKey)
        return key


def simulated() -> bool:
    s = get_settings()
    return not s.wechatpay_mchid or s.wechatpay_api_base.rstrip("/").endswith(SIMULATOR_PREFIX)


def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8") if path else ""


_lock = threading.Lock()
_config: PayConfig | None = None
_provider: Provider | None = None


def get() -> PayConfig:
    global _config
    with _lock:
        if _config is None:
            _config = _load()
        return _config


def _load() -> PayConfig:
    s = get_settings()
    base = s.base_url.rstrip("/")
    if simulated():
        return PayConfig(
            simulated=True, mchid=s.wechatpay_mchid or SIM_MCHID, appid=s.wechat_mp_appid or SIM_APPID,
            serial_no=SIM_SERIAL_NO, private_key_pem=(KEY_DIR / "merchant_private.pem").read_text(),
            apiv3_key=SIM_APIV3_KEY, platform_public_key_pem=(KEY_DIR / "platform_public.pem").read_text(),
            platform_public_key_id=SIM_PUBLIC_KEY_ID, api_base=s.wechatpay_api_base or base + SIMULATOR_PREFIX,
            notify_url=base + NOTIFY_PATH, window_seconds=s.wechatpay_notify_window_seconds)
    missing = [name for name in ("wechatpay_serial_no", "wechatpay_private_key_path", "wechatpay_apiv3_key",
                                 "wechatpay_platform_public_key_path", "wechatpay_platform_public_key_id")
               if not getattr(s, name)]
    if missing:
        raise RuntimeError(f"WeChat Pay needs {', '.join('SCRM_' + m.upper() for m in missing)}")
    return PayConfig(
        simulated=False, mchid=s.wechatpay_mchid, appid=s.wechat_mp_appid, serial_no=s.wechatpay_serial_no,
        private_key_pem=_read(s.wechatpay_private_key_path), apiv3_key=s.wechatpay_apiv3_key,
        platform_public_key_pem=_read(s.wechatpay_platform_public_key_path),
        platform_public_key_id=s.wechatpay_platform_public_key_id,
        api_base=s.wechatpay_api_base or "https://api.mch.weixin.qq.com", notify_url=base + NOTIFY_PATH,
        window_seconds=s.wechatpay_notify_window_seconds)


def provider() -> Provider:
    """The process's provider (the WeChat Pay adapter, pointed at the real API or the simulator)."""
    global _provider
    cfg = get()
    with _lock:
        if _provider is None:
            from payments.wechatpay import WeChatPayProvider

            _provider = WeChatPayProvider(
                mchid=cfg.mchid, appid=cfg.appid, serial_no=cfg.serial_no, private_key_pem=cfg.private_key_pem,
                apiv3_key=cfg.apiv3_key, platform_public_key_pem=cfg.platform_public_key_pem,
                platform_public_key_id=cfg.platform_public_key_id, notify_url=cfg.notify_url, api_base=cfg.api_base)
        return _provider


def set_provider(value: Provider | None) -> None:
    global _provider
    with _lock:
        _provider = value


def reset() -> None:
    """Forget the cached configuration and provider (after the settings changed: tests)."""
    global _config, _provider
    with _lock:
        _config = None
        _provider = None


def _simulated_by(settings: Settings) -> bool:
    return not settings.wechatpay_mchid or settings.wechatpay_api_base.rstrip("/").endswith(SIMULATOR_PREFIX)


# Production refuses to start while payments are simulated (core.simulators.check at startup).
simulators.register("payments", "微信支付 WeChat Pay", active=_simulated_by,
                    settings=("SCRM_WECHATPAY_MCHID", "SCRM_WECHATPAY_SERIAL_NO", "SCRM_WECHATPAY_PRIVATE_KEY_PATH",
                              "SCRM_WECHATPAY_APIV3_KEY", "SCRM_WECHATPAY_PLATFORM_PUBLIC_KEY_PATH",
                              "SCRM_WECHATPAY_PLATFORM_PUBLIC_KEY_ID"))
