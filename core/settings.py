"""Every setting of the service, read from the environment (prefix ``SCRM_``) and ``.env``.

The README lists them all; keep the two in step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

VAR_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCRM_", env_file=".env", extra="ignore")

    # --- runtime -----------------------------------------------------------------------------
    env: str = Field("development", description="development | production | test; production refuses to start without secrets")
    database_url: str = Field(
        f"sqlite:///{VAR_DIR}/scrm.db",
        description="SQLAlchemy URL; PostgreSQL in production (postgresql+psycopg://…)",
    )
    redis_url: str | None = Field(
        None,
        description="Celery broker and cache. Unset: tasks and periodic jobs run in-process (embedded default)",
    )
    log_level: str = Field("INFO", description="DEBUG | INFO | WARNING | ERROR")
    base_url: str = Field("http://127.0.0.1:8000", description="public URL of the console, used in links")
    allow_simulators: bool = Field(
        False, description="a demo deployment: production starts with simulated WeCom/WeChat (loud warning)"
    )

    # --- secrets -----------------------------------------------------------------------------
    secret_key: str = Field("", description="signs login CSRF tokens; `scrm init-secrets` generates it")
    pii_keys: str = Field(
        "",
        description="AES-256-GCM keys as 'kid:base64key,kid2:base64key'; `scrm init-secrets` generates one",
    )
    pii_active_key_id: str = Field("", description="key id new ciphertexts use (default: the last of pii_keys)")
    blind_index_key: str = Field("", description="base64 HMAC-SHA256 key of the blind index for lookup and dedup")

    # --- console sessions and login ----------------------------------------------------------
    session_cookie_name: str = Field("scrm_session", description="console session cookie")
    session_ttl_minutes: int = Field(8 * 60, description="console session lifetime")
    cookie_secure: bool = Field(False, description="set true behind HTTPS")
    login_max_failures: int = Field(
        5, description="failed logins of one username in 15 minutes before its attempts are delayed (no lock)"
    )
    login_max_delay_seconds: int = Field(30, description="the longest wait before a delayed login attempt is checked")

    # --- business ----------------------------------------------------------------------------
    apr_cap_rate: str = Field("0.24", description="comprehensive annualised cost cap (综合年化成本上限)")
    lending_override_roles: str = Field(
        "admin,manager", description="roles that may approve an application against a 拒绝 verdict or above the "
                                     "computed credit limit (with a written reason); comma-separated role codes")
    reminder_offsets: str = Field("-3,0,1,3", description="repayment reminders, days from the due date (-3 = T-3)")

    import_dir: str = Field(str(VAR_DIR / "imports"), description="where lead-import error reports are written")
    export_dir: str = Field(str(VAR_DIR / "exports"), description="where background Excel exports (导出任务) are written")
    import_stale_minutes: int = Field(
        15, description="a running lead import whose heartbeat is older than this is shown as interrupted (failed)"
    )
    import_max_rows: int = Field(200_000, ge=1, description="data rows one lead import may have (a larger file is refused)")
    dashboard_cache_seconds: int = Field(
        60, ge=0, description="a department- or company-scope home dashboard is reused for this long (figures up to "
                              "this old, the time shown on the page); 0: computed on every view. Own scope: always live"
    )
    list_choices_cache_seconds: int = Field(
        300, ge=0, description="the customer list's 地区 and 来源 drop-downs of a department- or company-scope viewer "
                               "are reused for this long (a value new to the scope shows up in them this late; "
                               "typing it still filters); 0: computed on every view. Own scope: always live"
    )
    figure_refresh_minutes: int = Field(
        15, ge=0, description="a cached dashboard or drop-down viewed within this many minutes is recomputed by the "
                              "served processes before it expires, and the figures of staff with an open console "
                              "session are computed when a server starts (core.figure_refresh); 0: off, each is "
                              "computed by its first viewer after expiry"
    )

    # --- WeCom (企业微信) ---------------------------------------------------------------------------
    wecom_corp_id: str = Field("", description="corp id (企业ID); empty: the built-in WeCom simulator's demo corp")
    wecom_token: str = Field("", description="callback Token of the self-built app")
    wecom_aes_key: str = Field("", description="callback EncodingAESKey (43 characters)")
    wecom_agent_id: str = Field("", description="AgentId of the self-built app (app messages, chat commands)")
    wecom_secret: str = Field("", description="Secret of the self-built app with customer-contact permission")
    wecom_api_base: str = Field(
        "", description="WeCom API base URL; empty with no secret: the built-in simulator at {base_url}/_wecom_sim"
    )
    wecom_callback_window_seconds: int = Field(300, description="accepted age of a callback timestamp")
    wecom_release_on_customer_delete: bool = Field(
        False, description="a customer who deletes their salesperson in WeCom goes back to the public pool"
    )

    # --- WeChat mini-program (小程序) ------------------------------------------------------------
    wechat_mp_appid: str = Field("", description="mini-program AppID; empty: the simulator's demo app")
    wechat_mp_secret: str = Field("", description="mini-program AppSecret; empty: WeChat is the built-in simulator")
    wechat_api_base: str = Field(
        "", description="WeChat API base URL; empty with no secret: the simulator at {base_url}/_wecom_sim"
    )
    mp_session_ttl_hours: int = Field(72, description="lifetime of a mini-program login session")
    wechat_reminder_template_id: str = Field("sim-repayment-reminder",
                                             description="订阅消息 template of the repayment reminder")
    mp_upload_dir: str = Field(str(VAR_DIR / "uploads"), description="where uploaded files are stored, encrypted (ID photos, application documents)")

    # --- WeChat Pay v3 (微信支付, payments/) -------------------------------------------------------
    wechatpay_mchid: str = Field("", description="merchant id (商户号); empty: the built-in payment simulator")
    wechatpay_serial_no: str = Field("", description="serial number of the merchant API certificate (商户API证书序列号)")
    wechatpay_private_key_path: str = Field("", description="PEM file of the merchant API private key (apiclient_key.pem)")
    wechatpay_apiv3_key: str = Field("", description="APIv3 key (32 characters): decrypts notification resources")
    wechatpay_platform_public_key_path: str = Field("", description="PEM file of the WeChat Pay platform public key")
    wechatpay_platform_public_key_id: str = Field("", description="id of that public key (PUB_KEY_ID_…)")
    wechatpay_api_base: str = Field(
        "", description="WeChat Pay API base; empty with no mchid: the simulator at {base_url}/_pay_sim"
    )
    wechatpay_notify_window_seconds: int = Field(300, description="accepted age of a payment notification timestamp")

    # --- collections (贷后, postloan) --------------------------------------------------------------
    postloan_credit_recheck_days: int = Field(
        30, ge=0, description="days between credit re-checks of an open collection case (0: never re-check)")
    postloan_credit_recheck_batch: int = Field(200, ge=1, description="credit re-checks per hourly run at most")

    # --- telephony (外呼, postloan/telephony) --------------------------------------------------
    telephony_api_base: str = Field(
        "", description="call center API base; empty: the built-in telephony simulator at {base_url}/_tel_sim"
    )
    telephony_api_key: str = Field("", description="API key our calls to the call center carry (Bearer)")
    telephony_callback_secret: str = Field("", description="HMAC-SHA256 key of the call center's result callbacks")
    telephony_call_hours: str = Field("08:00-21:00", description="hours calls are permitted, Asia/Shanghai (HH:MM-HH:MM)")
    telephony_callback_window_seconds: int = Field(300, description="accepted age of a telephony callback timestamp")

    # --- tasks -------------------------------------------------------------------------------
    task_max_retries: int = Field(5, description="retries (exponential backoff) before a task fails for good")
    inprocess_workers: int = Field(2, description="threads running tasks in the embedded default")
    outbox_max_attempts: int = Field(10, description="relay sends of an unsettled outbox row before it is dead")
    outbox_relay_interval_seconds: float = Field(2.0, description="pause between two rounds of the outbox relay")
    task_visibility_timeout_seconds: int = Field(
        3600, ge=10, description="Celery on Redis: a task a worker took and never acknowledged (the worker was killed) "
                                 "goes back to the queue after this; longer than the longest task")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def wecom_simulated(self) -> bool:
        """No real credentials: WeCom is the local simulator (make run, tests)."""
        return not self.wecom_secret or self.wecom_api_base.rstrip("/").endswith("/_wecom_sim")

    @property
    def wechat_simulated(self) -> bool:
        """No mini-program secret: WeChat is the local simulator."""
        return not self.wechat_mp_secret or self.wechat_api_base.rstrip("/").endswith("/_wecom_sim")

    @property
    def embedded_tasks(self) -> bool:
        return not self.redis_url


SECRETS = ("secret_key", "pii_keys", "blind_index_key")


def missing_secrets(settings: Settings) -> list[str]:
    """The environment names of the secrets the service cannot run without and that are not set."""
    return [f"SCRM_{name.upper()}" for name in SECRETS if not getattr(settings, name)]


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()
