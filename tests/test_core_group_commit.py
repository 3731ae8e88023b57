"""core.group_commit: concurrent writes share one batch; each caller gets its own outcome."""

import threading

import pytest

from core.group_commit import GroupCommitter


class Refused(Exception):
    pass


def test_items_queued_while_a_batch_is_written_go_together_into_the_next():
    release = threading.Event()
    batches: list[list[int]] = []

    def write(items):
        batches.append(list(items))
        if len(batches) == 1:
            release.wait(5)  # the first batch "commits" slowly; the others queue meanwhile
        return [item * 10 for item in items]

    committer = GroupCommitter(write)
    first = committer.submit(1)
    while not batches:
        threading.Event().wait(0.001)  # the first batch is being written
    others = [committer.submit(n) for n in (2, 3, 4)]
    release.set()
    assert first.result(5) == 10
    assert [f.result(5) for f in others] == [20, 30, 40]
    assert batches == [[1], [2, 3, 4]]
    committer.stop()


def test_an_item_refused_by_the_write_fails_alone():
    committer = GroupCommitter(lambda items: [Refused(i) if i == 2 else i for i in items])
    futures = [committer.submit(n) for n in (1, 2, 3)]
    assert futures[0].result(5) == 1 and futures[2].result(5) == 3
    with pytest.raises(Refused):
        futures[1].result(5)
    committer.stop()


def test_a_failed_batch_is_written_again_item_by_item():
    gate, started = threading.Event(), threading.Event()
    calls: list[list[int]] = []

    def write(items):
        if not calls:
            started.set()
            gate.wait(5)
        calls.append(list(items))
        if 2 in items:
            raise RuntimeError("statement failed")
        return items

    committer = GroupCommitter(write)
    blocker = committer.submit(0)
    started.wait(5)
    futures = [committer.submit(n) for n in (1, 2, 3)]
    gate.set()
    assert blocker.result(5) == 0
    assert futures[0].result(5) == 1 and futures[2].result(5) == 3
    with pytest.raises(RuntimeError):
        futures[1].result(5)
    assert calls[1] == [1, 2, 3] and calls[2:] == [[1], [2], [3]]
    committer.stop()


def test_a_batch_never_exceeds_max_batch():
    gate, started = threading.Event(), threading.Event()
    sizes: list[int] = []

    def write(items):
        if not sizes:
            started.set()
            gate.wait(5)
        sizes.append(len(items))
        return items

    committer = GroupCommitter(write, max_batch=4)
    futures = [committer.submit(0)]
    started.wait(5)
    futures += [committer.submit(n) for n in range(1, 11)]
    gate.set()
    assert [f.result(5) for f in futures] == list(range(11))
    assert sizes[0] == 1 and sizes[1:] == [4, 4, 2]
    committer.stop()
