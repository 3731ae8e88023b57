"""Applications from the mini-program: drafts, profile into the CRM (sealed), uploads, idempotent submission."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import func, select

from core import pii
from core.settings import get_settings
from crm.models import Customer
from lending.models import Application
from miniprogram_api import uploads
from miniprogram_api.models import MpDocument
from tests.mp_support import JPEG, VALID_ID, consent_all, make_offer, png, ready_draft


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_draft_keeps_amount_in_fen_and_returns_yuan_strings(session, mp):
    product = make_offer(session)
    mp.login("alice")
    response = mp.post("/applications", {"product_id": product.id, "amount": "50000.5", "term_months": 12})
    assert response.status_code == 200, response.text
    assert response.json()["amount"] == "50000.50"
    assert set(response.json()["missing"]) >= {"姓名", "身份证号", "月收入", "职业", "身份证人像面"}


def test_the_id_number_goes_sealed_onto_the_customer_never_into_the_draft(session, mp):
    product = make_offer(session)
    mp.login("alice")
    response = mp.post("/applications", {"product_id": product.id, "name": "张三", "id_number": VALID_ID,
                                         "income": "12000.00", "occupation": "工程师"})
    assert response.status_code == 200, response.text
    assert VALID_ID not in response.text
    customer = session.get(Customer, mp.get("/me").json()["id"])
    assert pii.open_sealed(pii.ID_NUMBER, customer.id_number_enc) == VALID_ID
    assert customer.name == "张三" and mp.get("/me").json()["id_number_masked"] == "440301********1238"
    body = response.json()
    assert (body["income"], body["occupation"]) == ("12000.00", "工程师")


def test_a_bad_id_number_is_refused_in_chinese_and_nothing_is_stored(session, mp):
    mp.login("alice")
    response = mp.post("/applications", {"name": "张三", "id_number": "110101199003071234"})
    assert response.status_code == 422 and "身份证号校验失败" in response.json()["message"]
    assert mp.get("/applications").json()["applications"] == []


def test_an_amount_outside_the_product_is_refused_with_the_range(session, mp):
    product = make_offer(session)
    mp.login("alice")
    response = mp.post("/applications", {"product_id": product.id, "amount": "500.00", "term_months": 12})
    assert response.status_code == 422 and "不在产品允许的" in response.json()["message"]


def test_a_submitted_draft_cannot_be_edited(session, mp):
    product = make_offer(session)
    mp.login("alice")
    draft_id = ready_draft(mp, product.id)
    consent_all(mp)
    assert mp.post(f"/applications/{draft_id}/submit", {"idempotency_key": "tap-0000001"}).status_code == 200
    response = mp.patch(f"/applications/{draft_id}", {"occupation": "教师"})
    assert response.status_code == 409 and response.json()["code"] == "mp_draft_submitted"


def test_an_incomplete_draft_is_refused_with_what_is_missing(session, mp):
    product = make_offer(session)
    mp.login("alice")
    consent_all(mp)
    draft_id = mp.post("/applications", {"product_id": product.id, "amount": "50000", "term_months": 12}).json()["id"]
    response = mp.post(f"/applications/{draft_id}/submit", {"idempotency_key": "tap-0000001"})
    assert response.status_code == 422 and response.json()["code"] == "mp_application_incomplete"
    assert "身份证国徽面" in response.json()["message"] and "手机号" in response.json()["message"]


def test_submission_enters_the_lending_workflow_with_node_names(session, mp):
    product = make_offer(session)
    mp.login("alice")
    draft_id = ready_draft(mp, product.id)
    consent_all(mp)
    response = mp.post(f"/applications/{draft_id}/submit", {"idempotency_key": "tap-0000001"})
    assert response.status_code == 200, response.text
    app = session.get(Application, response.json()["application_id"])
    assert (app.channel, app.requested_amount, app.term_months) == ("miniprogram", 5_000_000, 12)
    assert app.fields == {"monthly_income": "12000.00"}  # what the customer filled in, for the reviewers
    from lending import applications as lending_apps

    assert [d.kind for d in lending_apps.documents(session, app.id)] == ["身份证"]
    status = mp.get(f"/applications/{draft_id}/status").json()
    assert status["status"] == "intake" and status["node"] and status["history"][0]["node"] == status["node"]


def test_a_double_tap_submits_once(session, mp):
    product = make_offer(session)
    mp.login("alice")
    draft_id = ready_draft(mp, product.id)
    consent_all(mp)
    first = mp.post(f"/applications/{draft_id}/submit", {"idempotency_key": "tap-0000001"})
    second = mp.post(f"/applications/{draft_id}/submit", {"idempotency_key": "tap-0000001"})
    assert first.status_code == second.status_code == 200
    assert first.json()["application_id"] == second.json()["application_id"]
    assert _count(session, Application) == 1


def test_a_second_submission_with_another_key_is_refused(session, mp):
    product = make_offer(session)
    mp.login("alice")
    draft_id = ready_draft(mp, product.id)
    consent_all(mp)
    mp.post(f"/applications/{draft_id}/submit", {"idempotency_key": "tap-0000001"})
    response = mp.post(f"/applications/{draft_id}/submit", {"idempotency_key": "tap-0000002"})
    assert response.status_code == 409 and _count(session, Application) == 1


def test_submission_is_rate_limited(session, mp):
    mp.login("alice")
    for _ in range(10):
        mp.post("/applications/999999/submit", {"idempotency_key": "tap-0000001"})
    assert mp.post("/applications/999999/submit", {"idempotency_key": "tap-0000001"}).status_code == 429


# --- uploads ---------------------------------------------------------------------------------------

def test_an_upload_is_stored_outside_the_database_with_its_checksum(session, mp):
    import hashlib

    mp.login("alice")
    draft_id = mp.post("/applications", {}).json()["id"]
    response = mp.upload(draft_id, "id_front", JPEG)
    assert response.status_code == 200, response.text
    assert response.json()["content_type"] == "image/jpeg"
    doc = session.get(MpDocument, response.json()["id"])
    path = Path(get_settings().mp_upload_dir) / doc.storage_name
    assert doc.sha256 == hashlib.sha256(JPEG).hexdigest() and uploads.read(doc) == JPEG
    assert len(Path(doc.storage_name).stem) == 32 and "a.jpg" not in doc.storage_name  # not guessable
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_an_upload_is_encrypted_on_disk_and_tampering_is_detected(session, mp):
    import pytest

    from core.pii import VaultError

    mp.login("alice")
    draft_id = mp.post("/applications", {}).json()["id"]
    doc = session.get(MpDocument, mp.upload(draft_id, "id_front", JPEG).json()["id"])
    path = Path(get_settings().mp_upload_dir) / doc.storage_name
    raw = path.read_bytes()
    assert JPEG[:16] not in raw and raw.startswith(b"SCRMF1")
    path.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(VaultError):
        uploads.read(doc)


def test_the_type_is_sniffed_from_the_bytes_not_the_declared_type(session, mp):
    mp.login("alice")
    draft_id = mp.post("/applications", {}).json()["id"]
    response = mp.upload(draft_id, "id_front", png(), "photo.jpg", "image/jpeg")
    assert response.status_code == 200 and response.json()["content_type"] == "image/png"


def test_an_upload_that_is_not_an_image_is_refused_and_nothing_stored(session, mp):
    mp.login("alice")
    draft_id = mp.post("/applications", {}).json()["id"]
    response = mp.upload(draft_id, "id_front", b"%PDF-1.4 pretending", "id.jpg", "image/jpeg")
    assert response.status_code == 422 and response.json()["code"] == "mp_upload_not_image"
    assert "JPG 或 PNG" in response.json()["message"]
    assert _count(session, MpDocument) == 0
    root = Path(get_settings().mp_upload_dir)
    assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))


def test_an_upload_over_5_mb_is_refused_and_nothing_stored(session, mp):
    mp.login("alice")
    draft_id = mp.post("/applications", {}).json()["id"]
    response = mp.upload(draft_id, "id_front", JPEG + b"\x00" * (5 * 1024 * 1024))
    assert response.status_code == 422 and response.json()["code"] == "mp_upload_too_large"
    assert _count(session, MpDocument) == 0


def test_an_unknown_document_kind_is_refused(session, mp):
    mp.login("alice")
    draft_id = mp.post("/applications", {}).json()["id"]
    assert mp.upload(draft_id, "selfie", JPEG).status_code == 422


def test_a_deleted_upload_leaves_the_disk(session, mp):
    mp.login("alice")
    draft_id = mp.post("/applications", {}).json()["id"]
    doc_id = mp.upload(draft_id, "id_front", JPEG).json()["id"]
    path = Path(get_settings().mp_upload_dir) / session.get(MpDocument, doc_id).storage_name
    assert mp.delete(f"/documents/{doc_id}").status_code == 200
    assert not path.exists() and mp.get("/documents").json()["documents"] == []
