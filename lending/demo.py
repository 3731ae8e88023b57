"""Demo data of the lending domain for `scrm seed-demo`: one line per area, each idempotent."""

from __future__ import annotations

from sqlalchemy.orm import Session

from lending import loan_demo, product_demo


def seed(session: Session) -> list[str]:
    lines: list[str] = []
    lines += product_demo.seed(session)
    lines += loan_demo.seed(session)
    return lines
