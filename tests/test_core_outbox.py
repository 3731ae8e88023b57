"""The durable outbox: a task call is a row of the transaction that enqueues it; the relay sends what
nobody settled (a process killed between commit and send), once; dead rows can be sent again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from core import clock, outbox, outbox_relay, tasks
from core.audit import AuditLog
from core.db import unit_of_work
from core.outbox import TaskOutbox
from tests.celery_worker import running_worker
from tests.conftest import postgres_only, redis_only


def _rows(session, name="core.ping"):
    return list(session.scalars(select(TaskOutbox).where(TaskOutbox.name == name).order_by(TaskOutbox.id)))


def _pings(session_or_factory, marker):
    query = select(func.count()).select_from(AuditLog).where(AuditLog.action == "task.ping",
                                                             AuditLog.detail == marker)
    if callable(session_or_factory):
        with session_or_factory() as s:
            return s.scalar(query)
    return session_or_factory.scalar(query)


def test_the_row_is_written_by_the_commit_and_sent_with_its_id(session, task_runner):
    outbox.enqueue(session, "core.ping", "o1")
    assert _rows(session) == []  # buffered: nothing written before the commit
    session.commit()
    (row,) = _rows(session)
    assert (row.status, row.args, row.kwargs, row.attempts) == ("pending", ["o1"], {}, 0)
    assert task_runner.sent == [("core.ping", ("o1",), {})]
    assert task_runner.sent[0].outbox_id == row.id
    assert task_runner.drain() == ["core.ping"]
    session.refresh(row)
    assert row.status == "sent" and row.sent_at is not None


def test_a_rolled_back_transaction_leaves_no_row_and_sends_nothing(session, task_runner):
    with pytest.raises(ZeroDivisionError), unit_of_work() as s:
        outbox.enqueue(s, "core.ping", "o2")
        1 / 0  # noqa: B018
    assert _rows(session) == [] and task_runner.sent == []


def test_countdown_is_kept_and_the_relay_waits_for_it(session, task_runner):
    now = datetime.fromisoformat("2026-12-01T02:00:00+00:00")
    clock.freeze(now)
    outbox.enqueue(session, "core.ping", "o3", countdown=120)
    session.commit()
    (row,) = _rows(session)
    assert row.countdown == 120 and row.due_at == now + outbox.RELAY_AFTER + timedelta(seconds=120)


def test_enqueue_once_writes_one_row_per_unit_of_work(session, task_runner):
    outbox.enqueue_once(session, "core.ping", "o4")
    outbox.enqueue_once(session, "core.ping", "o4")
    outbox.enqueue_once(session, "core.ping", "o5")
    session.commit()
    assert [r.args for r in _rows(session)] == [["o4"], ["o5"]]


def test_a_task_enqueued_inside_a_task_is_written_too(session, task_runner, monkeypatch):
    def chained(marker):
        with unit_of_work() as s:
            outbox.enqueue(s, "core.ping", marker + "-child")

    with unit_of_work() as s:
        outbox.enqueue(s, "core.ping", "o6")
    monkeypatch.setattr(tasks.celery_app.tasks["core.ping"], "run", chained)
    task_runner.drain(limit=1)
    assert [(r.args, r.status) for r in _rows(session)] == [(["o6"], "sent"), (["o6-child"], "pending")]


def test_the_relay_leaves_rows_the_runner_still_holds(session, task_runner):
    clock.freeze(datetime.fromisoformat("2026-12-01T02:00:00+00:00"))
    outbox.enqueue(session, "core.ping", "o7")
    session.commit()
    clock.freeze(datetime.fromisoformat("2026-12-01T02:05:00+00:00"))  # long overdue, but still queued in this process
    assert outbox_relay.relay_once() == 0
    assert len(task_runner.sent) == 1
    (row,) = _rows(session)
    assert row.attempts == 0 and row.due_at == clock.now() + outbox.RELAY_AFTER


def test_a_row_nobody_settles_is_relayed_with_backoff_then_dead(session, task_runner, monkeypatch):
    monkeypatch.setenv("SCRM_OUTBOX_MAX_ATTEMPTS", "2")
    from core.settings import reset_settings_cache

    reset_settings_cache()
    start = datetime.fromisoformat("2026-12-01T02:00:00+00:00")
    clock.freeze(start)
    outbox.enqueue(session, "core.ping", "o8")
    session.commit()
    task_runner.sent.clear()  # the process "died": its queue is gone
    clock.freeze(start + timedelta(seconds=31))
    assert outbox_relay.relay_once() == 1
    (row,) = _rows(session)
    assert row.attempts == 1 and row.due_at == clock.now() + timedelta(seconds=30)
    task_runner.sent.clear()
    assert outbox_relay.relay_once() == 0  # not due again before its backoff
    clock.freeze(start + timedelta(seconds=62))
    assert outbox_relay.relay_once() == 1
    session.refresh(row)
    assert row.attempts == 2 and row.due_at == clock.now() + timedelta(seconds=60)
    task_runner.sent.clear()
    clock.freeze(start + timedelta(seconds=123))
    assert outbox_relay.relay_once() == 0
    session.refresh(row)
    assert row.status == "dead" and "2" in row.last_error and task_runner.sent == []
    reset_settings_cache()


def test_sent_rows_are_pruned_after_the_retention(session, task_runner):
    clock.freeze(datetime.fromisoformat("2026-12-01T02:00:00+00:00"))
    outbox.enqueue(session, "core.ping", "o9")
    outbox.enqueue(session, "core.ping", "o10")
    session.commit()
    task_runner.drain(limit=1)
    clock.freeze(datetime.fromisoformat("2026-12-01T03:01:00+00:00"))
    assert outbox.prune_sent(session) == 1
    assert [(r.args, r.status) for r in _rows(session)] == [(["o10"], "pending")]


def test_a_task_failing_for_good_in_process_is_dead_and_a_retry_sends_it_again(committed, monkeypatch):
    runs = []

    def failing(marker):
        runs.append(marker)
        raise RuntimeError("gateway said no")

    monkeypatch.setattr(tasks.celery_app.tasks["core.ping"], "run", failing)
    monkeypatch.setattr(tasks.celery_app.tasks["core.ping"], "max_retries", 1)
    monkeypatch.setattr("core.tasks.InProcessRunner.backoff", lambda self, attempt: 0.01, raising=False)
    runner = tasks.InProcessRunner(workers=1, periodic_jobs=False)
    runner.start()
    tasks.set_runner(runner)
    try:
        with unit_of_work() as s:
            outbox.enqueue(s, "core.ping", "o11")
        assert runner.wait_idle(10)
        with committed() as s:
            (row,) = _rows(s)
            assert (row.status, row.attempts) == ("dead", 2) and "gateway said no" in row.last_error
            assert outbox.retry(s, row.id)
            s.commit()
        monkeypatch.undo()
        assert outbox_relay.relay_once() == 1
        assert runner.wait_idle(10)
        with committed() as s:
            (row,) = _rows(s)
            assert row.status == "sent" and _pings(s, "o11") == 1
    finally:
        runner.stop()
    assert runs == ["o11", "o11"]


_CRASH_AFTER_COMMIT = textwrap.dedent("""
    import os, signal, sys
    from core import outbox, plugins, tasks
    from core.db import unit_of_work
    plugins.load_models(); plugins.load_tasks()

    def die(*args, **kwargs):  # the process is killed after the commit, before any send
        os.kill(os.getpid(), signal.SIGKILL)

    tasks.dispatch = die
    with unit_of_work() as s:
        outbox.enqueue(s, "core.ping", sys.argv[1])
    print("not reached")
""")


def test_a_process_killed_between_commit_and_send_loses_nothing(committed):
    marker = uuid.uuid4().hex
    proc = subprocess.run([sys.executable, "-c", _CRASH_AFTER_COMMIT, marker], env=dict(os.environ),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL and "not reached" not in proc.stdout
    with committed() as s:
        (row,) = [r for r in _rows(s) if r.args == [marker]]
        assert row.status == "pending" and _pings(s, marker) == 0
    runner = tasks.InProcessRunner(workers=2, periodic_jobs=False)
    runner.start()
    tasks.set_runner(runner)
    relay = outbox_relay.OutboxRelay(interval=0.05)
    try:
        assert outbox_relay.relay_once() == 0  # not due yet: the fast path may still be on its way
        clock.freeze(clock.now() + outbox.RELAY_AFTER + timedelta(seconds=1))
        relay.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _pings(committed, marker) == 0:
            time.sleep(0.05)
        rounds = relay.rounds
        while relay.rounds < rounds + 5:  # let the relay go round a few more times
            time.sleep(0.05)
        assert runner.wait_idle(10)
    finally:
        relay.stop()
        runner.stop()
    with committed() as s:
        (row,) = [r for r in _rows(s) if r.args == [marker]]
        assert row.status == "sent" and row.attempts == 1
        assert _pings(s, marker) == 1


class _Collector:
    """A runner that only records what a relay handed it (for counting sends across relays)."""

    def __init__(self, pause: float) -> None:
        self.got: list[int] = []
        self.pause = pause

    def in_flight(self):
        return set()

    def submit(self, name, args, kwargs, countdown=None, outbox_id=None):
        time.sleep(self.pause)  # widen the window in which two relays overlap
        self.got.append(outbox_id)


@postgres_only
def test_two_relays_at_once_never_send_one_row_twice(committed, monkeypatch):
    start = clock.now()
    with unit_of_work() as s:
        for i in range(300):
            outbox.enqueue(s, "core.ping", f"pair-{i}")
    with committed() as s:
        s.execute(update(TaskOutbox).values(due_at=start - timedelta(seconds=1)))
        s.commit()
        ids = set(s.scalars(select(TaskOutbox.id)))
    collectors = [_Collector(0.002), _Collector(0.002)]
    local = threading.local()
    monkeypatch.setattr(tasks, "get_runner", lambda: local.runner)
    barrier = threading.Barrier(2)
    errors = []

    def relay(collector):
        local.runner = collector
        barrier.wait()
        try:
            while outbox_relay.relay_once(limit=25):
                pass
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=relay, args=(c,)) for c in collectors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    got = collectors[0].got + collectors[1].got
    assert sorted(got) == sorted(ids)  # every row once, none twice
    assert collectors[0].got and collectors[1].got  # and both relays did take rows


def _wait(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@redis_only
@pytest.mark.worker
def test_celery_relay_and_a_task_failing_for_good_on_a_real_worker(committed, tmp_path):
    """PostgreSQL + Redis: an unsent row goes through the broker to a real worker once; a task that fails
    for good on the worker makes its own outbox row dead."""
    env = {"SCRM_TASK_MAX_RETRIES": "0"}
    good, bad = uuid.uuid4().hex, None
    tasks.set_runner(tasks.ManualRunner())  # the fast path's sends are lost: "the web process died"
    with unit_of_work() as s:
        outbox.enqueue(s, "core.ping", good)
        outbox.enqueue(s, "core.ping", bad)  # ping(None) raises TypeError on the worker
    tasks.set_runner(None)
    with committed() as s:
        s.execute(update(TaskOutbox).values(due_at=clock.now()))
        s.commit()
        good_id, bad_id = [r.id for r in _rows(s)]
    assert outbox_relay.relay_once() == 2  # this process relays through the real broker
    with running_worker(tmp_path, **env) as worker:
        assert _wait(lambda: _pings(committed, good) >= 1, timeout=60), \
            "the worker did not run the relayed task:\n" + worker.output()

        def bad_is_dead():
            with committed() as s:
                return s.get(TaskOutbox, bad_id).status == "dead"

        assert _wait(bad_is_dead), "the failed task's row was not marked dead:\n" + worker.output()
        time.sleep(3)  # the worker's own relay had time to send anything twice
        with committed() as s:
            assert _pings(s, good) == 1
            assert s.get(TaskOutbox, good_id).status == "sent"
            dead = s.get(TaskOutbox, bad_id)
            assert "TypeError" in dead.last_error and dead.attempts == 1
            assert s.scalar(select(func.count()).select_from(TaskOutbox)) == 2  # no stray dead row


def test_the_celery_sender_marks_rows_sent_only_when_the_broker_took_them(committed):
    tasks.set_runner(tasks.ManualRunner())  # only to get the rows written
    with unit_of_work() as s:
        outbox.enqueue(s, "core.ping", "ok")
        outbox.enqueue(s, "core.ping", "refused")
    tasks.set_runner(None)
    with committed() as s:
        ok_id, refused_id = [r.id for r in _rows(s)]
    taken = []

    def send(job, producer):
        if job.args == ("refused",):
            raise ConnectionError("broker refused")
        taken.append(job.outbox_id)

    sender = tasks.AsyncSender(send, retry_delay=0)
    sender.submit("core.ping", ("ok",), outbox_id=ok_id)
    sender.submit("core.ping", ("refused",), outbox_id=refused_id)
    assert sender.stop(10)
    assert taken == [ok_id]
    with committed() as s:
        assert {r.args[0]: r.status for r in _rows(s)} == {"ok": "sent", "refused": "pending"}


def test_a_script_without_a_task_runner_leaves_its_rows_to_the_relay_without_a_traceback(session, monkeypatch,
                                                                                        caplog):
    """In-process tasks but no runner in this process (a script beside `scrm serve`): the row stays pending for
    a server's relay, and the log says so in one line (it used to print a RuntimeError's traceback)."""
    monkeypatch.setattr(tasks, "_runner", None)
    monkeypatch.setenv("SCRM_REDIS_URL", "")
    from core.settings import reset_settings_cache

    reset_settings_cache()
    try:
        with caplog.at_level("INFO", logger="core.outbox"):
            outbox.enqueue(session, "core.ping", "o-script")
            session.commit()
    finally:
        monkeypatch.undo()
        reset_settings_cache()
    (row,) = _rows(session)
    assert row.status == "pending"
    (record,) = [r for r in caplog.records if r.name == "core.outbox"]
    assert "left for the relay" in record.getMessage() and record.exc_info is None
