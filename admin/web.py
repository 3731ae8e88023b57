"""Mounts the console (/console) and the staff JSON API (/api/v1)."""

from __future__ import annotations

from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    pass
