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
        return simulated_report(self.name, person.id_number)


# The simulated population: scores roughly normal around 690 (sd ~70, the shape of real bureau scores),
# so most applicants pass, about one in ten goes to manual review (score < 600) and a few are rejected
# for repeated overdue records — the demo's happy path is not an override.
SCORE_MEAN, SCORE_SD = 690, 70


def simulated_report(provider: str, id_number: str) -> CreditReport:
    """A deterministic report for an ID number (the same person always gets the same report)."""
    digest = hashlib.sha256(id_number.encode()).digest()
    # Irwin–Hall: the sum of four uniform bytes is close to normal (mean 510, variance 4 × 5461.25).
    total = sum(digest[:4])
    z = (total - 510) / (4 * 5461.25) ** 0.5
    score = max(350, min(900, round(SCORE_MEAN + SCORE_SD * z)))
    roll = digest[4] % 100
    if score < 600:
        overdue = 3 + roll % 3 if roll < 35 else roll % 3  # a third of weak profiles: 3+ overdue records
    elif score < 680:
        overdue = 1 if roll < 20 else 0
    else:
        overdue = 1 if roll < 5 else 0
    return CreditReport(provider=provider, score=score, overdue_count=overdue,
                        max_overdue_days=overdue * (digest[5] % 30), open_loans=digest[6] % 4,
                        queries_90d=digest[7] % 6)


_provider: CreditProvider = FakeCreditProvider()


def get_credit_provider() -> CreditProvider:
    """The provider in use (the fake by default: a real bureau client registers itself with set_credit_provider)."""
    return _provider


def set_credit_provider(provider: CreditProvider | None) -> None:
    global _provider
    _provider = provider or FakeCreditProvider()
