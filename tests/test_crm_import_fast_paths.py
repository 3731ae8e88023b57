"""The import's fast paths give exactly what the general code gives: blind indexes and seals, plain
amounts and terms, round-robin dealing, COPY text of odd values."""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core import pii
from core.errors import ValidationFailed
from core.settings import reset_settings_cache
from crm import allocation, customers
from crm.importer import rows, service, writer
from crm.models import Customer, CustomerEvent
from tests.factories import make_org, make_staff
from tests.import_support import csv_file


@pytest.fixture(autouse=True)
def import_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRM_IMPORT_DIR", str(tmp_path / "imports"))
    reset_settings_cache()
    yield
    monkeypatch.delenv("SCRM_IMPORT_DIR")
    reset_settings_cache()


@given(st.text(alphabet="0123456789X", min_size=1, max_size=20), st.sampled_from(pii.KINDS))
def test_the_sealers_blind_index_is_the_vaults(value, kind):
    assert writer.Sealer().index(kind, value) == pii.blind_index(kind, value)


def test_a_blind_index_key_longer_than_a_block_is_hashed_first_like_hmac_does():
    ring = pii.Keyring(pii.keyring().keys, pii.keyring().active_id, b"k" * 100)
    assert writer.Sealer(ring).index(pii.PHONE, "13800138000") == pii.blind_index(pii.PHONE, "13800138000", ring)


def test_a_seal_opens_with_the_vault_and_is_base64url():
    token = writer.Sealer().seal(pii.ID_NUMBER, "11010519491231002X")
    assert pii.open_sealed(pii.ID_NUMBER, token) == "11010519491231002X"
    body = token.split(".", 1)[1]
    assert "+" not in body and "/" not in body and "=" not in body
    base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def _decimal_path(value: str, in_wan: bool):
    saved = rows._plain_amount
    rows._plain_amount = lambda *_a: None
    try:
        return rows.parse_amount(value, in_wan=in_wan)
    except ValidationFailed as exc:
        return exc.message
    finally:
        rows._plain_amount = saved


def _fast_path(value: str, in_wan: bool):
    try:
        return rows.parse_amount(value, in_wan=in_wan)
    except ValidationFailed as exc:
        return exc.message


@settings(max_examples=400)
@given(st.from_regex(r"\A[0-9]{0,12}(\.[0-9]{0,8})?\Z") | st.sampled_from(
    ["5", "30.5", "0.000001", "100000000", "100000000.01", "10000.001", ".5", "5.", "007.10", "1e5", " 5", "+5"]),
    st.booleans())
def test_plain_amounts_are_the_decimal_paths_amounts(value, in_wan):
    assert _fast_path(value, in_wan) == _decimal_path(value, in_wan)


@pytest.mark.parametrize("value, months", [("24个月", 24), ("3年", 36), ("12月", 12), ("6期", 6), ("012个月", 12)])
def test_common_term_spellings(value, months):
    assert rows.parse_term(value) == months


@pytest.mark.parametrize("value", ["31年", "0个月", "361个月", "x年"])
def test_terms_out_of_range_or_malformed_are_refused(value):
    with pytest.raises(ValidationFailed):
        rows.parse_term(value)


def _one_at_a_time(capacities: list[int], loads: list[int], n: int, last_index: int | None) -> list[int | None]:
    """The dealing loop, lead by lead: the next member after the last one served who still has room."""
    remaining = [max(0, c - load) for c, load in zip(capacities, loads, strict=True)]
    pos = 0 if last_index is None else (last_index + 1) % len(capacities)
    out: list[int | None] = []
    for _ in range(n):
        for step in range(len(capacities)):
            i = (pos + step) % len(capacities)
            if remaining[i] > 0:
                out.append(i)
                remaining[i] -= 1
                pos = (i + 1) % len(capacities)
                break
        else:
            out.append(None)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 6), min_size=1, max_size=4), st.integers(0, 12), st.integers(0, 3))
def test_round_robin_deals_a_batch_like_one_lead_at_a_time(session, capacities, n, rounds_before):
    nested = session.begin_nested()  # each example starts from the same database
    try:
        org = make_org(session)
        staff = sorted((make_staff(session, department=org["team_a"], capacity=c) for c in capacities),
                       key=lambda s: s.id)
        pool_id = customers.default_pool(session).id
        leads = [allocation.LeadFacts("x")]
        dealt_before = [allocation.plan(session, leads, pool_id=pool_id, mode="round_robin")[0]
                        for _ in range(rounds_before)]
        # what the earlier deals left: loads stay 0 (plan writes nothing); only the cursor moved
        last = next((s for s in reversed(dealt_before) if s is not None), None)
        ids = [s.id for s in staff]
        expected = _one_at_a_time(capacities, [0] * len(staff), n, ids.index(last) if last else None)
        got = allocation.plan(session, leads * n, pool_id=pool_id, mode="round_robin")
        assert got == [None if i is None else ids[i] for i in expected]
    finally:
        nested.rollback()


def test_odd_characters_reach_the_database_unchanged(session, tmp_path):
    name, note = "王\\五\t乙", "第一行\n第二行\r\\N 结束"
    path = csv_file(tmp_path / "a.csv", [[name, "13800138000", note]], header=["姓名", "手机号", "备注"])
    result = service.import_file(path, source="来源\t含制表符")
    assert result.counts["created"] == 1
    c = session.scalar(select(Customer))
    assert (c.name, c.note, c.source) == (name, note, "来源\t含制表符")
    assert session.scalar(select(CustomerEvent.summary)) == "新客户（来源：来源\t含制表符）"
