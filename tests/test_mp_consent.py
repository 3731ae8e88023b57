"""PIPL consent: versioned documents, explicit records with ip/ua, withdrawal honoured, re-consent."""

from __future__ import annotations

from sqlalchemy import select

from lending import consent
from lending.models.consent import MpConsent
from tests.mp_support import consent_all, make_offer, ready_draft


def _docs(user):
    return {d["code"]: d for d in user.get("/consents").json()["documents"]}


def test_documents_are_listed_with_my_state(session, mp):
    product = make_offer(session)
    mp.login("alice")
    docs = _docs(mp)
    assert set(docs) == {"privacy", f"share:{product.funder_id}"}
    assert all(d["agreed"] is False for d in docs.values())
    body = mp.get(f"/consents/{docs['privacy']['id']}").json()["body"]
    assert "个人信息" in body


def test_a_consent_is_recorded_with_version_time_ip_and_user_agent(session, mp):
    make_offer(session)
    mp.login("alice")
    doc = _docs(mp)["privacy"]
    response = mp.client.post("/mp/consents", json={"document_id": doc["id"]},
                              headers={**mp.headers, "User-Agent": "MicroMessenger/8.0"})
    assert response.status_code == 200
    row = session.scalars(select(MpConsent)).one()
    assert (row.version, row.action, row.user_agent, row.ip) == (1, "grant", "MicroMessenger/8.0", "testclient")
    assert _docs(mp)["privacy"]["agreed"] is True


def test_a_new_version_needs_consent_again(session, mp):
    make_offer(session)
    mp.login("alice")
    consent_all(mp)
    consent.publish(session, "privacy", "隐私政策", "第二版……")
    session.flush()
    state = _docs(mp)["privacy"]
    assert state["version"] == 2 and state["agreed"] is False and state["agreed_version"] == 1


def test_consenting_to_an_old_version_is_refused(session, mp):
    make_offer(session)
    mp.login("alice")
    old = _docs(mp)["privacy"]["id"]
    consent.publish(session, "privacy", "隐私政策", "第二版……")
    session.flush()
    response = mp.post("/consents", {"document_id": old})
    assert response.status_code == 422 and "最新版本" in response.json()["message"]


def test_withdrawal_is_recorded_and_re_consent_allowed(session, mp):
    make_offer(session)
    mp.login("alice")
    consent_all(mp)
    doc = _docs(mp)["privacy"]
    assert mp.post(f"/consents/{doc['id']}/withdraw").status_code == 200
    state = _docs(mp)["privacy"]
    assert state["agreed"] is False and state["withdrawn"] is True
    assert mp.post("/consents", {"document_id": doc["id"]}).status_code == 200
    assert _docs(mp)["privacy"]["agreed"] is True
    actions = [r.action for r in session.scalars(select(MpConsent).where(MpConsent.code == "privacy")
                                                 .order_by(MpConsent.id))]
    assert actions == ["grant", "withdraw", "grant"]


def test_withdrawing_what_was_never_agreed_is_refused(session, mp):
    make_offer(session)
    mp.login("alice")
    response = mp.post(f"/consents/{_docs(mp)['privacy']['id']}/withdraw")
    assert response.status_code == 422 and "尚未同意" in response.json()["message"]


def test_an_application_without_consent_is_refused_and_nothing_is_submitted(session, mp):
    product = make_offer(session)
    mp.login("alice")
    draft_id = ready_draft(mp, product.id)
    response = mp.post(f"/applications/{draft_id}/submit", {"idempotency_key": "tap-0000001"})
    assert response.status_code == 409 and response.json()["code"] == "mp_consent_missing"
    assert "隐私政策" in response.json()["message"]
    assert mp.get(f"/applications/{draft_id}").json()["status"] == "draft"


def test_an_application_after_withdrawing_the_share_authorisation_is_refused(session, mp):
    product = make_offer(session)
    mp.login("alice")
    draft_id = ready_draft(mp, product.id)
    consent_all(mp)
    share = _docs(mp)[f"share:{product.funder_id}"]
    mp.post(f"/consents/{share['id']}/withdraw")
    response = mp.post(f"/applications/{draft_id}/submit", {"idempotency_key": "tap-0000001"})
    assert response.status_code == 409 and "授权书" in response.json()["message"]
    mp.post("/consents", {"document_id": share["id"]})  # re-consent: allowed again
    assert mp.post(f"/applications/{draft_id}/submit", {"idempotency_key": "tap-0000001"}).status_code == 200


def test_a_funder_without_a_published_authorisation_blocks_submission(session, mp):
    from tests.lending_product_factories import make_product

    make_offer(session)
    bare = make_product(session)
    session.flush()
    mp.login("alice")
    draft_id = ready_draft(mp, bare.id)
    consent_all(mp)
    response = mp.post(f"/applications/{draft_id}/submit", {"idempotency_key": "tap-0000001"})
    assert response.status_code == 409 and response.json()["code"] == "mp_consent_document_missing"
