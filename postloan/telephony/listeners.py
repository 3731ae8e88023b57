"""Who hears of a finished call: a listener per subject kind, called in the transaction that records the
result (exactly once per call): a result from the provider (status ``finished``) or a failure before the
provider rang (status ``failed``: refused at dial time, provider refused it, stuck in the queue). The collection case module registers one for its cases::

    @on_call_finished("collection_case")
    def _record_call(session, call):  # call: TelephonyCall, status finished or failed
        ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from postloan.telephony.models import TelephonyCall

Listener = Callable[[Session, TelephonyCall], Any]
_listeners: dict[str, list[Listener]] = {}


def on_call_finished(subject_kind: str) -> Callable[[Listener], Listener]:
    """Register ``fn(session, call)`` for finished calls about ``subject_kind`` (re-registering is a no-op)."""

    def register(fn: Listener) -> Listener:
        named = _listeners.setdefault(subject_kind, [])
        key = (fn.__module__, fn.__qualname__)
        named[:] = [f for f in named if (f.__module__, f.__qualname__) != key]
        named.append(fn)
        return fn

    return register


def notify(session: Session, call: TelephonyCall) -> None:
    for fn in _listeners.get(call.subject_kind or "", ()):
        fn(session, call)


def remove(subject_kind: str, fn: Listener) -> None:
    """Forget a listener (tests)."""
    named = _listeners.get(subject_kind, [])
    if fn in named:
        named.remove(fn)
