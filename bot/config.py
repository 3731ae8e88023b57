"""WeCom settings resolved: the real corp, or the built-in simulator's demo corp."""

from __future__ import annotations

from functools import lru_cache

from bot.callback_crypto import CallbackCrypto
from core.errors import AppError
from core.settings import get_settings

SIMULATOR_CORP_ID = "wwsimulatorcorp0001"
SIMULATOR_AGENT_ID = "1000002"
SIMULATOR_PREFIX = "/_wecom_sim"
OAUTH_AUTHORIZE_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"


class WecomNotConfigured(AppError):
    code = "wecom_not_configured"
    status = 503
    message = "企业微信回调未配置（SCRM_WECOM_TOKEN / SCRM_WECOM_AES_KEY）"


def corp_id() -> str:
    s = get_settings()
    return s.wecom_corp_id or (SIMULATOR_CORP_ID if s.wecom_simulated else "")


def agent_id() -> str:
    s = get_settings()
    return s.wecom_agent_id or (SIMULATOR_AGENT_ID if s.wecom_simulated else "")


def oauth_authorize_url() -> str:
    """Where a page opened inside WeCom sends the browser to learn who the member is (snsapi_base); the
    simulator's is on this server, whatever address the browser reached it by."""
    s = get_settings()
    if s.wecom_simulated:
        return SIMULATOR_PREFIX + "/connect/oauth2/authorize"
    return OAUTH_AUTHORIZE_URL


def api_base() -> str:
    s = get_settings()
    if s.wecom_api_base:
        return s.wecom_api_base.rstrip("/")
    if s.wecom_simulated:
        return s.base_url.rstrip("/") + SIMULATOR_PREFIX
    return "https://qyapi.weixin.qq.com"


@lru_cache
def callback_crypto() -> CallbackCrypto:
    s = get_settings()
    if not s.wecom_token or not s.wecom_aes_key or not corp_id():
        raise WecomNotConfigured()
    return CallbackCrypto(s.wecom_token, s.wecom_aes_key, corp_id(), window_seconds=s.wecom_callback_window_seconds)


def reset() -> None:
    callback_crypto.cache_clear()
