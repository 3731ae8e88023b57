"""The scripted journey: log in through the simulator, bind the phone, consent, calculate, apply, and
watch the status move as staff approve in the lending services, up to the loan and its schedule."""

from __future__ import annotations

from types import SimpleNamespace

from lending.models import Application
from tests.factories import make_org, make_staff
from tests.lending_flow_support import advance_to
from tests.mp_support import JPEG, VALID_ID, Mp, make_offer, png


def _staff(session) -> SimpleNamespace:
    org = make_org(session)
    return SimpleNamespace(manager=make_staff(session, role="manager", department=org["company"], data_scope="all"),
                           finance=make_staff(session, role="finance", department=org["company"], data_scope="all"),
                           risk=make_staff(session, role="risk", department=org["company"], data_scope="all"))


def disburse_for(session, user: Mp, draft_id: int) -> int:
    """Staff drive the customer's application to servicing; returns the loan id."""
    from lending import disbursement

    app = session.get(Application, user.get(f"/applications/{draft_id}").json()["application_id"])
    advance_to(session, _staff(session), app, "servicing")
    loan = disbursement.loan_for(session, app.id)
    assert loan is not None
    return loan.id


def test_journey_from_login_to_a_loan_with_its_schedule(session, mp):
    product = make_offer(session)
    staff = _staff(session)
    session.flush()

    # 1. log in (wx.login code through the simulator's jscode2session) and bind the phone
    assert mp.login("journey")["new_customer"] is True
    assert mp.bind_phone("13612345678").json()["phone_masked"] == "136****5678"

    # 2. consent to the privacy policy and the funder's share authorisation
    docs = mp.get("/consents").json()["documents"]
    for doc in docs:
        assert mp.post("/consents", {"document_id": doc["id"]}).status_code == 200

    # 3. the calculator, with the product
    quote = mp.post("/calculator", {"product_id": product.id, "amount": "50000.00", "term_months": 12}).json()
    assert quote["first_payment"] == "4442.44" and len(quote["periods"]) == 12

    # 4. apply: profile, ID photos, submit
    draft = mp.post("/applications", {"product_id": product.id, "amount": "50000.00", "term_months": 12,
                                      "name": "赵六", "id_number": VALID_ID, "income": "15000",
                                      "occupation": "教师"}).json()
    mp.upload(draft["id"], "id_front", JPEG)
    mp.upload(draft["id"], "id_back", png(), "b.png", "image/png")
    submitted = mp.post(f"/applications/{draft['id']}/submit", {"idempotency_key": "journey-0001"})
    assert submitted.status_code == 200, submitted.text

    # 5. staff move it through the workflow; the customer watches the node names change
    app = session.get(Application, submitted.json()["application_id"])
    seen = [mp.get(f"/applications/{draft['id']}/status").json()["node"]]
    for code in ("first_review", "signing", "disbursement", "servicing"):
        advance_to(session, staff, app, code)
        seen.append(mp.get(f"/applications/{draft['id']}/status").json()["node"])
    assert len(set(seen)) == len(seen) and all(seen)
    final = mp.get(f"/applications/{draft['id']}/status").json()
    assert final["status"] == "disbursed" and final["status_label"] == "已放款"
    assert len(final["history"]) >= 5

    # 6. my loans: the contract, the schedule, the next due date and amount
    loans = mp.get("/loans").json()
    assert loans["note"] is None and len(loans["loans"]) == 1 and len(loans["contracts"]) == 1
    loan = loans["loans"][0]
    assert loan["principal"] == "50000.00" and len(loan["schedule"]) == 12
    assert loan["next_due_date"] == loan["schedule"][0]["due_date"]
    assert loan["next_due_amount"] == loan["schedule"][0]["total"]
