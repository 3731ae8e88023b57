"""Production refuses to start on simulators (WeCom, WeChat, and whatever other packages register)."""

from __future__ import annotations

import pytest

from core import simulators
from core.settings import reset_settings_cache
from core.web import create_app

REAL_WECOM = {"SCRM_WECOM_CORP_ID": "wwrealcorp", "SCRM_WECOM_SECRET": "real-secret", "SCRM_WECOM_AGENT_ID": "1000002"}
REAL_WECHAT = {"SCRM_WECHAT_MP_APPID": "wxrealapp", "SCRM_WECHAT_MP_SECRET": "real-mp-secret"}
REAL_PAY = {"SCRM_WECHATPAY_MCHID": "1230000109", "SCRM_WECHATPAY_API_BASE": "https://api.mch.weixin.qq.com"}
REAL_TEL = {"SCRM_TELEPHONY_API_BASE": "https://cc.example.com/api", "SCRM_TELEPHONY_API_KEY": "real-key",
            "SCRM_TELEPHONY_CALLBACK_SECRET": "real-callback-secret"}


@pytest.fixture
def production(monkeypatch):
    def set_env(**env: str) -> None:
        monkeypatch.setenv("SCRM_ENV", "production")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        reset_settings_cache()

    yield set_env
    monkeypatch.undo()
    reset_settings_cache()


def test_production_with_simulated_wecom_and_wechat_refuses_to_start_naming_the_settings(production):
    production()
    with pytest.raises(simulators.SimulatorInProduction) as refused:
        create_app(start_tasks=False)
    message = str(refused.value)
    assert "SCRM_WECOM_SECRET" in message and "SCRM_WECHAT_MP_SECRET" in message
    assert "SCRM_ALLOW_SIMULATORS=true" in message


def test_production_with_real_wecom_but_simulated_wechat_still_refuses(production):
    production(**REAL_WECOM)
    with pytest.raises(simulators.SimulatorInProduction) as refused:
        create_app(start_tasks=False)
    assert "SCRM_WECHAT_MP_SECRET" in str(refused.value) and "SCRM_WECOM_SECRET" not in str(refused.value)


def test_production_with_real_wecom_and_wechat_but_simulated_payments_refuses(production):
    production(**REAL_WECOM, **REAL_WECHAT)
    with pytest.raises(simulators.SimulatorInProduction) as refused:
        create_app(start_tasks=False)
    message = str(refused.value)
    assert "SCRM_WECHATPAY_MCHID" in message and "SCRM_WECOM_SECRET" not in message


def test_production_with_everything_real_but_simulated_telephony_refuses(production):
    production(**REAL_WECOM, **REAL_WECHAT, **REAL_PAY)
    with pytest.raises(simulators.SimulatorInProduction) as refused:
        create_app(start_tasks=False)
    message = str(refused.value)
    assert "SCRM_TELEPHONY_API_BASE" in message and "SCRM_WECHATPAY_MCHID" not in message


def test_production_with_every_real_credential_starts_without_the_simulator(production):
    production(**REAL_WECOM, **REAL_WECHAT, **REAL_PAY, **REAL_TEL)
    app = create_app(start_tasks=False)
    assert not any(getattr(r, "path", "") in ("/_wecom_sim", "/_pay_sim", "/_tel_sim") for r in app.routes)


def test_demo_deployment_starts_with_a_loud_warning(production, capsys):
    production(SCRM_ALLOW_SIMULATORS="true")
    create_app(start_tasks=False)
    err = capsys.readouterr().err
    assert "DEMO DEPLOYMENT" in err and "SCRM_WECOM_SECRET" in err


def test_a_simulator_registered_by_another_package_is_refused_too(production):
    production(**REAL_WECOM, **REAL_WECHAT, **REAL_PAY, **REAL_TEL)
    simulators.register("test_payments", "支付（模拟器）", settings=("SCRM_TEST_PAY_KEY",), active=lambda s: True)
    try:
        with pytest.raises(simulators.SimulatorInProduction, match="SCRM_TEST_PAY_KEY"):
            create_app(start_tasks=False)
    finally:
        simulators._registry.pop("test_payments")


def test_development_starts_with_simulators():
    assert {s.key for s in simulators.active()} >= {"wecom", "wechat_mp"}
    simulators.check()  # SCRM_ENV=test: no refusal


def test_a_production_worker_refuses_to_start_on_simulators_too(production):
    import click

    from core import cli

    production(SCRM_REDIS_URL="redis://127.0.0.1:6379/15", **REAL_WECOM, **REAL_WECHAT)
    with pytest.raises(click.ClickException, match="SCRM_WECHATPAY_MCHID"):
        cli._celery()  # what `scrm worker` and `scrm beat` start with
