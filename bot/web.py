"""Mounts the WeCom callback endpoint (/wecom/callback)."""

from __future__ import annotations

from fastapi import FastAPI

from bot import callback


def mount(app: FastAPI) -> None:
    app.include_router(callback.router)
