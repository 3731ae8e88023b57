"""Races decided by the database: a double tap from two connections submits once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from core.db import unit_of_work
from core.errors import AppError
from core.settings import reset_settings_cache
from crm import customers
from lending import consent
from lending.models import Application
from miniprogram_api import applications, uploads
from tests.mp_support import JPEG, VALID_ID, make_offer


@pytest.fixture
def upload_dir(committed, monkeypatch, tmp_path):
    monkeypatch.setenv("SCRM_MP_UPLOAD_DIR", str(tmp_path))
    reset_settings_cache()
    yield tmp_path
    monkeypatch.delenv("SCRM_MP_UPLOAD_DIR")
    reset_settings_cache()


def _ready() -> tuple[int, int]:
    with unit_of_work() as s:
        product = make_offer(s)
        customer = customers.intake(s, customers.CustomerInput(
            name="孙八", phone="13512345678", id_number=VALID_ID, wechat_openid="osim-race"),
            channel="miniprogram").customer
        draft = applications.create_draft(s, customer.id, applications.DraftInput(
            product_id=product.id, amount=5_000_000, term_months=12, income_amount=1_000_000, occupation="司机"))
        for kind in ("id_front", "id_back"):
            uploads.store(s, customer.id, kind, JPEG, draft_id=draft.id)
        for doc in consent.current_documents(s):
            consent.grant(s, customer.id, doc.id)
        return customer.id, draft.id


def _race(customer_id: int, draft_id: int, keys: list[str]) -> list[object]:
    barrier = threading.Barrier(len(keys))
    results: list[object] = [None] * len(keys)

    def run(i: int) -> None:
        barrier.wait()
        try:
            with unit_of_work() as s:
                results[i] = applications.submit(s, customer_id, draft_id, keys[i]).application_id
        except AppError as exc:
            results[i] = exc.code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(keys))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_a_double_tap_from_two_connections_submits_once(upload_dir):
    customer_id, draft_id = _ready()
    results = _race(customer_id, draft_id, ["tap-same-key", "tap-same-key"])
    assert results[0] == results[1] and isinstance(results[0], int)
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Application)) == 1


def test_two_different_submissions_at_once_one_wins(upload_dir):
    customer_id, draft_id = _ready()
    results = _race(customer_id, draft_id, ["tap-key-one", "tap-key-two"])
    assert "mp_draft_submitted" in results
    assert sum(isinstance(r, int) for r in results) == 1
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Application)) == 1
