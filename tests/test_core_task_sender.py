"""Celery mode: tasks leave the committing thread through the process's AsyncSender, in order, retried a
bounded number of times, and only after commit."""

import logging
import threading

import pytest

from core import outbox, tasks


def recording_sender(fail=None, **kwargs):
    sent, attempts = [], []

    def send(job, _producer):
        attempts.append(job.args)
        if fail and fail(job, attempts):
            raise ConnectionError("broker unavailable")
        sent.append((job.name, job.args, job.kwargs))

    return tasks.AsyncSender(send, retry_delay=0, **kwargs), sent, attempts


def test_sender_sends_every_task_in_submission_order():
    sender, sent, _ = recording_sender()
    for i in range(300):
        sender.submit("core.ping", (f"m{i}",))
    assert sender.flush(timeout=10)
    assert sent == [("core.ping", (f"m{i}",), {}) for i in range(300)]
    sender.stop()


def test_submit_returns_while_the_broker_send_is_still_blocked():
    release = threading.Event()
    sent = []

    def slow_send(job, _producer):
        release.wait(10)
        sent.append(job.args)

    sender = tasks.AsyncSender(slow_send, retry_delay=0)
    sender.submit("core.ping", ("a",))
    sender.submit("core.ping", ("b",))
    assert sent == [] and sender.pending() == 2
    release.set()
    assert sender.flush(timeout=10)
    assert sent == [("a",), ("b",)]
    sender.stop()


def test_a_transient_failure_is_retried_and_order_is_kept():
    sender, sent, attempts = recording_sender(fail=lambda job, attempts: job.args == ("b",) and attempts.count(("b",)) == 1)
    for marker in "abc":
        sender.submit("core.ping", (marker,))
    assert sender.flush(timeout=10)
    assert [args for _, args, _ in sent] == [("a",), ("b",), ("c",)]
    assert attempts.count(("b",)) == 2
    sender.stop()


def test_a_send_that_keeps_failing_is_logged_and_given_up_after_the_bounded_attempts(caplog):
    sender, sent, attempts = recording_sender(fail=lambda job, _: job.args == ("bad",), attempts=3)
    with caplog.at_level(logging.WARNING, logger="core.tasks"):
        for marker in ("a", "bad", "c"):
            sender.submit("core.ping", (marker,))
        assert sender.flush(timeout=10)
    assert attempts.count(("bad",)) == 3
    assert [args for _, args, _ in sent] == [("a",), ("c",)]
    assert any("not sent after 3 attempts" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    sender.stop()


def test_stop_sends_what_is_queued_and_refuses_more():
    sender, sent, _ = recording_sender()
    for i in range(50):
        sender.submit("core.ping", (i,))
    assert sender.stop(timeout=10)
    assert len(sent) == 50
    with pytest.raises(RuntimeError):
        sender.submit("core.ping", ("late",))


@pytest.fixture
def celery_mode(monkeypatch):
    """dispatch() as with SCRM_REDIS_URL set, the broker replaced by a recording sender."""
    sender, sent, _ = recording_sender()
    tasks.set_runner(None)
    monkeypatch.setattr(tasks, "get_settings", lambda: type("S", (), {"embedded_tasks": False})())
    monkeypatch.setattr(tasks, "get_sender", lambda: sender)
    yield sender, sent
    sender.stop()


def test_celery_mode_sends_through_the_sender_only_after_commit(session, celery_mode):
    sender, sent = celery_mode
    outbox.enqueue(session, "core.ping", "c1")
    assert sender.flush(timeout=10) and sent == []
    session.commit()
    assert sender.flush(timeout=10)
    assert sent == [("core.ping", ("c1",), {})]


def test_celery_mode_drops_the_tasks_of_a_rolled_back_transaction(session, celery_mode):
    sender, sent = celery_mode
    outbox.enqueue(session, "core.ping", "c2")
    session.rollback()
    session.commit()
    assert sender.flush(timeout=10)
    assert sent == []


def test_each_process_gets_its_own_sender(monkeypatch):
    first = tasks.get_sender()
    assert tasks.get_sender() is first
    monkeypatch.setattr(first, "pid", -1)  # as seen from a forked child
    second = tasks.get_sender()
    assert second is not first
    assert tasks.stop_sender()
