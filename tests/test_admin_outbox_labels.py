"""The 任务队列 page names every task in Chinese: a task added without a label would show as 其他任务."""

from __future__ import annotations

from admin.outbox_labels import TASK_LABELS
from core import plugins, tasks


def test_every_registered_task_has_a_chinese_label():
    plugins.load_tasks()
    names = {n for n in tasks.celery_app.tasks if not n.startswith(("celery.", "test"))}  # Celery's own; a test's
    assert sorted(names - TASK_LABELS.keys()) == []
