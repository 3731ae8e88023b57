"""Re-issued phone numbers (二次放号): binding the number of a customer who has applications or loans asks
for the last four of that customer's ID number before the mini-program identity is merged into them."""

from __future__ import annotations

from sqlalchemy import func, select

from core import pii
from core.audit import AuditLog
from crm.models import Customer
from tests.factories import make_customer
from tests.servicing_support import make_loan

ID_NUMBER = "440301198805151238"  # last four 1238


def _customer_with_a_loan(session, phone: str) -> Customer:
    _, loan = make_loan(session)
    customer = session.get(Customer, loan.customer_id)
    for kind, value, prefix in ((pii.PHONE, phone, "phone"), (pii.ID_NUMBER, ID_NUMBER, "id_number")):
        sealed = pii.protect(kind, value)
        setattr(customer, f"{prefix}_enc", sealed.ciphertext)
        setattr(customer, f"{prefix}_index", sealed.index)
        setattr(customer, f"{prefix}_masked", sealed.masked)
    session.flush()
    return customer


def test_binding_the_number_of_a_customer_with_a_loan_asks_for_the_id_last_four(session, mp):
    victim = _customer_with_a_loan(session, "13700003333")
    mine = mp.login("mallory")["customer"]["id"]
    response = mp.bind_phone("13700003333")
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["code"] == "mp_id_last4_required" and "身份证号的后四位" in body["message"]
    assert body["details"]["binding_token"]
    # Nothing merged: the session still belongs to the bare record, and the victim's loans are not visible.
    assert mp.get("/me").json()["id"] == mine
    assert mp.get("/loans").json()["loans"] == []
    session.expire_all()
    assert session.get(Customer, victim.id).wechat_openid is None


def test_wrong_last_four_is_refused_and_the_loans_stay_hidden(session, mp):
    _customer_with_a_loan(session, "13700003334")
    mp.login("mallory")
    token = mp.bind_phone("13700003334").json()["details"]["binding_token"]
    response = mp.post("/phone/confirm", {"binding_token": token, "id_last4": "9999"})
    assert response.status_code == 400 and response.json()["code"] == "mp_id_last4_wrong"
    assert mp.get("/loans").json()["loans"] == []


def test_right_last_four_merges_and_shows_the_customer_their_loans(session, mp):
    victim = _customer_with_a_loan(session, "13700003335")
    mp.login("owner")
    token = mp.bind_phone("13700003335").json()["details"]["binding_token"]
    response = mp.post("/phone/confirm", {"binding_token": token, "id_last4": "1238"})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == victim.id
    assert len(mp.get("/loans").json()["loans"]) == 1
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "mp.identity_confirmed", AuditLog.entity_id == str(victim.id))) == 1


def test_guesses_at_the_last_four_are_rate_limited_per_number_across_accounts(session, mp, mp2):
    _customer_with_a_loan(session, "13700003336")
    codes = []
    for user, who in ((mp, "m1"), (mp2, "m2")):
        user.login(who)
        token = user.bind_phone("13700003336").json()["details"]["binding_token"]
        for guess in range(3):
            codes.append(user.post("/phone/confirm", {"binding_token": token, "id_last4": f"000{guess}"}).status_code)
    assert codes == [400] * 6
    # The seventh guess at this number (from either account) is refused before it is checked, even the right one.
    response = mp2.post("/phone/confirm", {"binding_token": token, "id_last4": "1238"})
    assert response.status_code == 429


def test_a_binding_token_of_another_session_is_refused(session, mp, mp2):
    _customer_with_a_loan(session, "13700003337")
    mp.login("a1")
    token = mp.bind_phone("13700003337").json()["details"]["binding_token"]
    mp2.login("a2")
    response = mp2.post("/phone/confirm", {"binding_token": token, "id_last4": "1238"})
    assert response.status_code == 422 and response.json()["code"] == "mp_validation_failed"
    assert mp2.post("/phone/confirm", {"binding_token": "x.forged", "id_last4": "1238"}).status_code == 422


def test_a_customer_with_no_applications_or_loans_still_merges_at_once(session, mp):
    known = make_customer(session, phone="13700003338", name="王五")
    session.flush()
    mp.login("carol")
    assert mp.bind_phone("13700003338").json()["id"] == known.id
