"""Credit-report providers (征信) behind one interface, and a deterministic fake for the demo and tests.

``CreditProvider.fetch(person)`` returns a :class:`CreditReport` or raises :class:`CreditTimeout` /
:class:`CreditFailed`. A provider that fails in any way never approves: risk evaluation turns it into
manual review. :class:`Person` carries the plaintext ID number in memory only, for the provider's
call; its ``repr`` is masked, and nothing stores it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from core import pii

__all__ = [
    "CreditFailed", "CreditProvider", "CreditReport", "CreditTimeout", "FakeCreditProvider", "Person",
    "get_credit_provider", "set_credit_provider",
]


@dataclass(frozen=True)
class Person:
    name: str
    id_number: str = field(repr=False)  # plaintext, held in memory for the provider call only

    def __repr__(self) -> str:
        return f"Person(name={self.name!r}, id_number={pii.mask_id_number(self.id_number)!r})"


@dataclass(frozen=True)
class CreditReport:
    provider: str
    score: int  # 300–900, higher is better
    overdue_count: int  # overdue records in the last 24 months
    max_overdue_days: int = 0
    open_loans: int = 0
    queries_90d: int = 0  # hard inquiries in the last 90 days


class CreditTimeout(Exception):
    """The provider did not answer in time."""


class CreditFailed(Exception):
    """The provider answered with an error, or could not be reached."""


class CreditProvider(Protocol):
    name: str

    def fetch(self, person: Person) -> CreditReport: ...


class FakeCreditProvider:
    """Deterministic reports from a hash of the ID number; ``mode`` "timeout" or "fail" to simulate outages.

    ``reports`` overrides the report for given ID numbers (tests pin a score that way).
    """

    name = "fake"

    def __init__(self, mode: str = "ok", reports: dict[str, CreditReport] | None = None) -> None:
        if mode not in ("ok", "timeout", "fail"):
            raise ValueError(f"unknown mode {mode}")
        self.mode = mode
        self.reports = dict(reports or {})
        self.calls = 0

    def fetch(self, person: Person) -> CreditReport:
        self.calls += 1
        if self.mode == "timeout":
            raise CreditTimeout("征信查询超时")
        if self.mode == "fail":
            raise CreditFailed("征信服务返回错误")
        if person.id_number in self.reports:
            return self.reports[person.id_number]
        digest = hashlib.sha256(person.id_number.encode()).digest()
        score = 350 + int.from_bytes(digest[:4], "big") % 551  # 350..900
        overdue = digest[4] % 4 if score < 600 else digest[4] % 2
        return CreditReport(provider=self.name, score=score, overdue_count=overdue,
                            max_overdue_days=overdue * (digest[5] % 30), open_loans=digest[6] % 5,
                            queries_90d=digest[7] % 8)


_provider: CreditProvider = FakeCreditProvider()


def get_credit_provider() -> CreditProvider:
    """The provider in use (the fake by default: a real bureau client registers itself with set_credit_provider)."""
    return _provider


def set_credit_provider(provider: CreditProvider | None) -> None:
    global _provider
    _provider = provider or FakeCreditProvider()
