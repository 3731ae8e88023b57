"""Every mini-program endpoint that takes an id is scoped to the logged-in customer: others' ids are 404."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import clock
from tests.factories import make_department
from tests.mp_support import JPEG, Mp, consent_all, make_offer, ready_draft


@pytest.fixture
def two(session, mp, mp2):
    """Alice with a submitted application, an upload and a visit; Bob logged in."""
    product = make_offer(session)
    company = make_department(session, "分公司甲", "company")
    center = make_department(session, "中心甲", "center", company)
    branch = make_department(session, "浦东分部", "branch", center)
    session.flush()
    mp.login("alice")
    draft_id = ready_draft(mp, product.id)
    consent_all(mp)
    assert mp.post(f"/applications/{draft_id}/submit", {"idempotency_key": "tap-0000001"}).status_code == 200
    spare = mp.post("/applications", {}).json()["id"]
    doc_id = mp.upload(spare, "id_front", JPEG).json()["id"]
    at = (clock.now() + timedelta(days=2)).isoformat()
    visit_id = mp.post("/visits", {"department_id": branch.id, "scheduled_at": at}).json()["id"]
    mp2.login("bob")
    return {"draft": draft_id, "spare": spare, "doc": doc_id, "visit": visit_id, "alice": mp, "bob": mp2}


def _is_404(response) -> None:
    assert response.status_code == 404, response.text
    assert response.json()["code"].endswith("not_found")


def test_another_customers_application_is_not_found(two):
    _is_404(two["bob"].get(f"/applications/{two['draft']}"))


def test_another_customers_application_status_is_not_found(two):
    _is_404(two["bob"].get(f"/applications/{two['draft']}/status"))


def test_another_customers_draft_cannot_be_edited(two):
    _is_404(two["bob"].patch(f"/applications/{two['spare']}", {"occupation": "黑客"}))


def test_another_customers_draft_cannot_be_submitted(two):
    _is_404(two["bob"].post(f"/applications/{two['spare']}/submit", {"idempotency_key": "tap-0000009"}))


def test_nothing_can_be_uploaded_into_another_customers_draft(two):
    _is_404(two["bob"].upload(two["spare"], "id_front", JPEG))


def test_another_customers_upload_cannot_be_deleted(two):
    _is_404(two["bob"].delete(f"/documents/{two['doc']}"))
    assert len(two["alice"].get("/documents").json()["documents"]) == 3


def test_another_customers_visit_cannot_be_rescheduled(two):
    at = (clock.now() + timedelta(days=3)).isoformat()
    _is_404(two["bob"].post(f"/visits/{two['visit']}/reschedule", {"scheduled_at": at}))


def test_another_customers_visit_cannot_be_cancelled(two):
    _is_404(two["bob"].post(f"/visits/{two['visit']}/cancel", {"reason": "不去了"}))


def test_another_customers_loan_is_not_found(two, session):
    from tests.test_mp_journey import disburse_for

    loan_id = disburse_for(session, two["alice"], two["draft"])
    _is_404(two["bob"].get(f"/loans/{loan_id}"))
    assert two["alice"].get(f"/loans/{loan_id}").status_code == 200


def test_lists_show_only_my_rows(two):
    bob: Mp = two["bob"]
    assert bob.get("/applications").json()["applications"] == []
    assert bob.get("/documents").json()["documents"] == []
    assert bob.get("/visits").json()["visits"] == []
    assert bob.get("/loans").json()["loans"] == []
    assert bob.get("/referral/invitees").json()["invitees"] == []
