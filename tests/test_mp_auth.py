"""Mini-program login, sessions and phone binding, against the simulator over real HTTP."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from core import clock, pii
from core.audit import AuditLog
from crm.models import Customer
from miniprogram_api.auth import TOKEN_PREFIX
from miniprogram_api.models import MpSession
from miniprogram_api.wechat import SIMULATOR_APPID
from tests.factories import make_customer
from tests.mp_support import encrypted_phone


def test_login_creates_a_miniprogram_customer_and_returns_a_token(session, mp):
    data = mp.login("alice")
    assert data["token"].startswith(TOKEN_PREFIX)
    assert data["new_customer"] is True
    customer = session.get(Customer, data["customer"]["id"])
    assert customer.wechat_openid.startswith("osim") and customer.source == "miniprogram"
    assert mp.get("/me").json()["id"] == customer.id


def test_jscode2session_is_called_without_an_access_token(session, mp):
    mp.login("alice")
    call = mp.server.calls("sns/jscode2session")[-1]
    assert "access_token" not in call["query"] and call["query"]["appid"] == SIMULATOR_APPID


def test_only_the_token_digest_and_a_sealed_session_key_are_stored(session, mp):
    token = mp.login("alice")["token"]
    row = session.scalars(select(MpSession)).one()
    assert token not in (row.token_digest, row.session_key_enc)
    assert pii.open_sealed(pii.PAYLOAD, row.session_key_enc)  # the session key, sealed


def test_second_login_of_the_same_wechat_user_finds_the_same_customer(session, mp):
    first = mp.login("alice")["customer"]["id"]
    again = mp.login("alice")
    assert again["customer"]["id"] == first and again["new_customer"] is False
    assert session.scalar(select(func.count()).select_from(Customer)) == 1


def test_a_code_used_twice_is_refused_and_nothing_is_stored(session, mp):
    code = mp.code("alice")
    assert mp.client.post("/mp/login", json={"code": code}).status_code == 200
    sessions_before = session.scalar(select(func.count()).select_from(MpSession))
    again = mp.client.post("/mp/login", json={"code": code})
    assert again.status_code == 400
    assert again.json()["code"] == "mp_login_code_used" and "已使用" in again.json()["message"]
    assert session.scalar(select(func.count()).select_from(MpSession)) == sessions_before
    assert len(mp.server.calls("sns/jscode2session")) == 1  # refused before WeChat was asked


def test_a_code_wechat_refuses_is_a_clear_error(session, mp):
    response = mp.client.post("/mp/login", json={"code": "invalid-code"})
    assert response.status_code == 400 and response.json()["code"] == "mp_login_code_invalid"
    assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_a_forged_token_is_refused(session, mp):
    mp.login("alice")
    mp.token = TOKEN_PREFIX + "forged" + "x" * 30
    response = mp.get("/me")
    assert response.status_code == 401 and response.json()["code"] == "mp_session_invalid"
    assert "重新登录" in response.json()["message"]


def test_no_token_is_refused(session, mp):
    response = mp.client.get("/mp/me")
    assert response.status_code == 401 and response.json()["code"] == "mp_session_invalid"


def test_an_expired_token_is_refused(session, mp):
    mp.login("alice")
    clock.freeze(clock.now() + timedelta(hours=73))
    assert mp.get("/me").status_code == 401


def test_a_token_still_fresh_is_accepted(session, mp):
    mp.login("alice")
    clock.freeze(clock.now() + timedelta(hours=71))
    assert mp.get("/me").status_code == 200


def test_logout_revokes_the_token(session, mp):
    mp.login("alice")
    assert mp.post("/logout").status_code == 200
    assert mp.get("/me").status_code == 401


def test_login_is_rate_limited_per_client(session, mp):
    for _ in range(20):
        mp.login("alice")
    response = mp.client.post("/mp/login", json={"code": mp.code("alice")})
    assert response.status_code == 429 and response.json()["code"] == "rate_limited"
    assert response.headers["Retry-After"]


def test_failed_logins_count_towards_the_limit(session, mp):
    for n in range(20):
        mp.client.post("/mp/login", json={"code": f"invalid-{n}"})
    assert mp.client.post("/mp/login", json={"code": mp.code("alice")}).status_code == 429


# --- phone binding ---------------------------------------------------------------------------------

def test_phone_binding_by_code_sets_the_sealed_phone(session, mp):
    mp.login("alice")
    response = mp.bind_phone("13812345678")
    assert response.status_code == 200, response.text
    assert response.json()["phone_masked"] == "138****5678"
    customer = session.get(Customer, response.json()["id"])
    assert pii.open_sealed(pii.PHONE, customer.phone_enc) == "13812345678"
    assert "13812345678" not in response.text


def test_phone_binding_calls_wechat_with_the_mini_program_token(session, mp):
    mp.login("alice")
    mp.bind_phone("13812345678")
    call = mp.server.calls("wxa/business/getuserphonenumber")[-1]
    assert call["errcode"] == 0 and call["query"]["access_token"].startswith("simmpt")
    assert len(mp.server.calls("cgi-bin/stable_token")) == 1


def test_a_phone_code_used_twice_is_refused(session, mp):
    mp.login("alice")
    assert mp.post("/phone/code", {"code": "13812345678:once"}).status_code == 200
    mp.login("bob")
    again = mp.post("/phone/code", {"code": "13812345678:once"})
    assert again.status_code == 400 and again.json()["code"] == "mp_phone_code_invalid"


def test_phone_binding_by_encrypted_data_with_the_session_key(session, mp):
    mp.login("alice")
    response = mp.post("/phone/encrypted", encrypted_phone("alice", "13912345678", SIMULATOR_APPID))
    assert response.status_code == 200, response.text
    assert response.json()["phone_masked"] == "139****5678"


def test_encrypted_data_of_another_appid_is_refused_and_nothing_stored(session, mp):
    mp.login("alice")
    response = mp.post("/phone/encrypted", encrypted_phone("alice", "13912345678", "wx_other_app"))
    assert response.status_code == 400 and response.json()["code"] == "mp_phone_wrong_app"
    customer = session.get(Customer, mp.get("/me").json()["id"])
    assert customer.phone_index is None


def test_encrypted_data_under_another_session_key_is_refused(session, mp):
    mp.login("alice")
    response = mp.post("/phone/encrypted", encrypted_phone("mallory", "13912345678", SIMULATOR_APPID))
    assert response.status_code == 400 and response.json()["code"].startswith("mp_phone")


def test_binding_the_phone_of_a_known_customer_merges_into_that_customer(session, mp):
    known = make_customer(session, phone="13700001111", name="王五")  # met through an import
    session.flush()
    mp_customer = mp.login("carol")["customer"]["id"]
    response = mp.bind_phone("13700001111")
    assert response.status_code == 200, response.text
    assert response.json()["id"] == known.id
    session.expire_all()
    assert session.get(Customer, known.id).wechat_openid is not None
    assert session.get(Customer, mp_customer).wechat_openid is None
    assert mp.get("/me").json()["id"] == known.id  # the session follows the merge
    assert mp.login("carol")["customer"]["id"] == known.id  # and so does the next login
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "mp.customer_merged")) == 1


def test_a_unionid_known_from_wecom_is_the_same_customer_at_login(session, mp, wecom_server):
    from crm import customers
    from tests.mp_support import Mp

    # The simulator derives the unionid from the identity; learn it from a first login elsewhere.
    probe = Mp(mp.client, wecom_server)
    unionid = session.get(Customer, probe.login("dave")["customer"]["id"]).wechat_unionid
    session.execute(Customer.__table__.update().values(wechat_openid=None, wechat_unionid=None))
    wecom = customers.intake(session, customers.CustomerInput(name="企微客户", wecom_external_userid="wmX1",
                                                              wechat_unionid=unionid), channel="wecom").customer
    session.flush()
    assert mp.login("dave")["customer"]["id"] == wecom.id


def test_a_second_phone_is_refused(session, mp):
    mp.login("alice")
    mp.bind_phone("13812345678")
    response = mp.bind_phone("13812340000")
    assert response.status_code == 409 and response.json()["code"] == "mp_phone_binding_refused"


def test_phone_binding_is_rate_limited(session, mp):
    mp.login("alice")
    for _ in range(10):
        mp.post("/phone/code", {"code": "invalid"})
    assert mp.post("/phone/code", {"code": "invalid"}).status_code == 429


def test_phone_of_a_customer_bound_to_another_wechat_is_refused(session, mp, mp2):
    mp.login("alice")
    mp.bind_phone("13812345678")
    mp2.login("bob")
    response = mp2.bind_phone("13812345678")
    assert response.status_code == 409 and "其他微信" in response.json()["message"]


def test_a_share_code_made_before_the_merge_follows_the_person(session, mp):
    from referral.models import Referrer

    known = make_customer(session, phone="13700002222", name="赵七")
    session.flush()
    mp.login("erin")
    code = mp.get("/referral").json()["code"]
    assert mp.bind_phone("13700002222").json()["id"] == known.id
    assert session.scalar(select(Referrer.customer_id).where(Referrer.code == code)) == known.id
    assert mp.get("/referral").json()["code"] == code


def test_used_codes_and_long_expired_sessions_are_purged(session, mp):
    from miniprogram_api import tasks as mp_tasks
    from miniprogram_api.models import MpUsedCode

    mp.login("alice")
    clock.freeze(clock.now() + timedelta(days=40))
    assert mp_tasks.purge() == {"codes": 1, "sessions": 1}
    assert session.scalar(select(func.count()).select_from(MpUsedCode)) == 0
