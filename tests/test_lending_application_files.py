"""Files kept with an application: uploaded in the console (encrypted at rest, audit-logged when opened) and the
mini-program's ID photos carried over at submission."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.audit import AuditLog
from core.settings import get_settings, reset_settings_cache
from crm.scope import Viewer
from lending import application_files, applications
from lending.models import Application, ApplicationDocument, ApplicationFile
from tests.factories import make_org, make_staff
from tests.lending_flow_support import make_world, start
from tests.mp_support import JPEG, consent_all, make_offer, ready_draft
from tests.test_admin_support import console_client, log_in

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def uploads(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRM_MP_UPLOAD_DIR", str(tmp_path / "uploads"))
    reset_settings_cache()
    yield tmp_path / "uploads"
    reset_settings_cache()


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _post(client, csrf, app_id, kind, data, name="身份证.pdf", mime="application/pdf"):
    return client.post(f"/console/lending/applications/{app_id}/documents", data={"csrf_token": csrf, "kind": kind},
                       files={"file": (name, data, mime)})


def test_a_file_uploaded_in_the_console_is_kept_encrypted_and_marks_the_document_received(session, uploads):
    w = make_world(session)
    app = start(session, w)
    client = console_client()
    csrf = log_in(client, session, w.sales)
    response = _post(client, csrf, app.id, "身份证", PDF, name="../../etc/张三身份证.pdf")
    assert response.status_code == 303, response.text
    row = session.scalar(select(ApplicationFile))
    assert (row.kind, row.file_name, row.content_type, row.source) == ("身份证", "张三身份证.pdf", "application/pdf",
                                                                       "console")
    assert [d.kind for d in applications.documents(session, app.id)] == ["身份证"]
    raw = (Path(get_settings().mp_upload_dir) / row.storage_name).read_bytes()
    assert raw.startswith(b"SCRMF1") and b"%PDF" not in raw  # encrypted at rest
    page = client.get(f"/console/lending/applications/{app.id}").text
    assert "申请材料文件" in page and f"/files/{row.id}" in page and "张三身份证.pdf" in page
    opened = client.get(f"/console/lending/applications/{app.id}/files/{row.id}")
    assert opened.status_code == 200 and opened.content == PDF
    assert opened.headers["content-type"] == "application/pdf" and opened.headers["cache-control"] == "no-store"
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "lending.application.file_viewed", AuditLog.entity_id == str(app.id))) == 1


@pytest.mark.parametrize("data, name, message", [
    (b"MZ\x90\x00 not a document", "a.exe", "只能上传 JPG、PNG 图片或 PDF 文件"),
    (PDF + b"\x00" * (10 * 1024 * 1024), "big.pdf", "文件过大"),
])
def test_a_refused_file_changes_nothing(session, uploads, data, name, message):
    w = make_world(session)
    app = start(session, w)
    client = console_client()
    csrf = log_in(client, session, w.sales)
    response = _post(client, csrf, app.id, "身份证", data, name=name)
    assert response.status_code == 422 and message in response.text
    assert _count(session, ApplicationFile) == 0 and _count(session, ApplicationDocument) == 0
    assert not uploads.exists() or not any(p.is_file() for p in uploads.rglob("*"))


def test_without_a_file_the_document_is_only_marked_received(session, uploads):
    w = make_world(session)
    app = start(session, w)
    client = console_client()
    csrf = log_in(client, session, w.sales)
    response = client.post(f"/console/lending/applications/{app.id}/documents",
                           data={"csrf_token": csrf, "kind": "户口本"})
    assert response.status_code == 303
    assert [d.kind for d in applications.documents(session, app.id)] == ["户口本"]
    assert _count(session, ApplicationFile) == 0


def test_a_file_is_not_found_outside_the_viewers_scope(session, uploads):
    w = make_world(session)
    app = start(session, w)
    client = console_client()
    csrf = log_in(client, session, w.sales)
    _post(client, csrf, app.id, "身份证", JPEG, name="a.jpg", mime="image/jpeg")
    row = session.scalar(select(ApplicationFile))
    other = console_client()
    log_in(other, session, w.other_sales)
    assert other.get(f"/console/lending/applications/{app.id}/files/{row.id}").status_code == 404
    assert client.get(f"/console/lending/applications/{app.id}/files/{row.id + 1}").status_code == 404


def test_the_mini_programs_id_photos_open_on_the_submitted_application(session, mp):
    product = make_offer(session)
    mp.login("alice")
    draft_id = ready_draft(mp, product.id)
    consent_all(mp)
    assert mp.post(f"/applications/{draft_id}/submit", {"idempotency_key": "files-00001"}).status_code == 200
    app = session.scalar(select(Application))
    rows = session.scalars(select(ApplicationFile).where(ApplicationFile.application_id == app.id)
                           .order_by(ApplicationFile.id)).all()
    assert [(r.kind, r.source, r.content_type) for r in rows] == [
        ("身份证", "miniprogram", "image/jpeg"), ("身份证", "miniprogram", "image/png")]
    admin = make_staff(session, role="admin", department=make_org(session)["company"])
    _, data = application_files.open_file(session, Viewer.of(admin), app.id, rows[0].id)
    assert data == JPEG
