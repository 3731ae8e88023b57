"""Mounts the WeCom callback endpoint (/wecom/callback) and, with no real WeCom credentials, the
built-in WeCom simulator at /_wecom_sim (API, admin controls, console page 企微模拟器)."""

from __future__ import annotations

from fastapi import FastAPI

from bot import callback, config, robots_console
from core.settings import get_settings


def mount(app: FastAPI) -> None:
    callback.mount(app)
    from bot import channel_console  # 渠道活码 pages at /wecom/channels

    app.include_router(channel_console.router)
    app.include_router(robots_console.router)
    from bot import mass_console  # 群发, 客户群 (分层拉群), 企微标签同步 at /wecom/mass, /wecom/groups, /wecom/tags

    app.include_router(mass_console.router)
    from bot import sidebar_routes  # the chat sidebar (聊天工具栏) at /wecom/sidebar

    sidebar_routes.mount(app)
    if get_settings().wecom_simulated:
        from bot.simulator.app import create_simulator_app

        app.mount(config.SIMULATOR_PREFIX, create_simulator_app(), name="wecom-simulator")
