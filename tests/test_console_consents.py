"""授权协议 in the console: publish after a preview, versions, who consented; a new version asks again
while the old consent stays recorded."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import audit
from lending import consent
from lending.models.consent import MpConsent, MpConsentDocument
from tests.factories import make_org, make_staff
from tests.mp_support import consent_all, make_offer, ready_draft
from tests.test_admin_support import console_client, log_in


@pytest.fixture
def admin(session):
    org = make_org(session)
    return make_staff(session, role="admin", department=org["company"], username="root")


@pytest.fixture
def console(session, admin):
    c = console_client()
    c.csrf = log_in(c, session, admin)
    return c


def _form(c, **fields):
    return {"csrf_token": c.csrf, "kind": "privacy", "funder_id": "", "title": "隐私政策", "body": "第一段。\n\n第二段。",
            **fields}


def test_sales_may_not_open_consents(session, admin):
    c = console_client()
    log_in(c, session, make_staff(session, department=admin.department))
    assert c.get("/console/consents").status_code == 403


def test_preview_shows_the_text_and_saves_nothing(session, console):
    response = console.post("/console/consents/preview", data=_form(console, body="本政策说明……\n\n一、我们收集的信息"))
    assert response.status_code == 200
    assert "预览：隐私政策 第 1 版" in response.text and "<p>一、我们收集的信息</p>" in response.text
    assert "确认发布第 1 版" in response.text
    assert session.scalar(select(MpConsentDocument.id)) is None


def test_preview_of_a_bad_document_says_why(session, console):
    response = console.post("/console/consents/preview", data=_form(console, kind="share"))
    assert response.status_code == 422 and "共享授权书必须指定资方" in response.text


def test_publish_makes_version_one_then_two_and_the_page_lists_both(session, console):
    first = console.post("/console/consents", data=_form(console), follow_redirects=False)
    assert first.status_code == 303
    preview = console.post("/console/consents/preview", data=_form(console, body="第二版正文"))
    assert "预览：隐私政策 第 2 版" in preview.text and "当前为第 1 版" in preview.text
    second = console.post("/console/consents", data=_form(console, body="第二版正文"), follow_redirects=False)
    doc = session.get(MpConsentDocument, int(second.headers["location"].split("/")[-1].split("?")[0]))
    assert (doc.code, doc.version, doc.body) == ("privacy", 2, "第二版正文")
    page = console.get(second.headers["location"])
    assert "第 1 版" in page.text and "第 2 版" in page.text and "第二版正文" in page.text
    assert audit.search(session, action="mp.consent_document_published")


def test_a_funders_share_authorisation_is_published_for_that_funder(session, console):
    product = make_offer(session)
    response = console.post("/console/consents", data=_form(console, kind="share", funder_id=str(product.funder_id),
                                                            title="共享授权书", body="授权……"), follow_redirects=False)
    assert response.status_code == 303
    assert consent.latest_document(session, consent.share_code(product.funder_id)).version == 2


def test_who_consented_lists_customer_version_and_time_and_keeps_the_old_consent(session, console, mp):
    product = make_offer(session)
    mp.login("alice")
    draft_id = ready_draft(mp, product.id)
    consent_all(mp)
    privacy_v1 = consent.latest_document(session, "privacy")
    page = console.get(f"/console/consents/{privacy_v1.id}")
    assert "张三" in page.text and "第 1 版" in page.text and "同意" in page.text and "1 位客户" in page.text

    console.post("/console/consents", data=_form(console, body="第二版：新增了一个用途"), follow_redirects=False)
    privacy_v2 = consent.latest_document(session, "privacy")
    assert privacy_v2.version == 2
    # a new version asks again: the submission is refused until the customer agrees to version 2
    refused = mp.post(f"/applications/{draft_id}/submit", {"idempotency_key": "tap-0000001"})
    assert refused.status_code == 409 and refused.json()["code"] == "mp_consent_missing"
    assert refused.json()["details"]["document_ids"] == [privacy_v2.id]
    assert mp.post("/consents", {"document_id": privacy_v2.id}).status_code == 200
    assert mp.post(f"/applications/{draft_id}/submit", {"idempotency_key": "tap-0000001"}).status_code == 200
    # the old consent stays recorded next to the new one
    rows = session.execute(select(MpConsent.version, MpConsent.action).where(MpConsent.code == "privacy")
                           .order_by(MpConsent.id)).all()
    assert rows == [(1, "grant"), (2, "grant")]
    page = console.get(f"/console/consents/{privacy_v2.id}").text
    assert page.count("张三") == 2 and "当前" in page
    assert consent.agreed_counts(session).get(privacy_v1.id, 0) == 0
    assert consent.agreed_counts(session)[privacy_v2.id] == 1


def test_a_second_publisher_of_the_same_version_is_refused_and_nothing_written(session, monkeypatch):
    from lending.consent_exceptions import ConsentVersionTaken

    consent.publish(session, "privacy", "隐私政策", "第一版")
    session.flush()
    stale = consent.check_draft(session, "privacy", "隐私政策", "第二版（甲）")
    consent.publish(session, "privacy", "隐私政策", "第二版（乙）")
    monkeypatch.setattr(consent, "check_draft", lambda *a, **k: stale)  # 甲 read version 2 before 乙 wrote it
    with pytest.raises(ConsentVersionTaken):
        consent.publish(session, "privacy", "隐私政策", "第二版（甲）")
    bodies = list(session.scalars(select(MpConsentDocument.body).order_by(MpConsentDocument.version)))
    assert bodies == ["第一版", "第二版（乙）"]
