"""The mini-program's encrypted data (published vector) and the simulator's WeChat endpoints."""

from __future__ import annotations

import base64

import httpx
import pytest

from miniprogram_api.exceptions import PhoneDecryptFailed
from miniprogram_api.wechat import WechatClient, decrypt_user_data, encrypt_user_data

# /work/shared/reference/wecom-crypto-vectors.md, section 2
APPID = "wx4f4bc4dec97d474b"
SESSION_KEY = "tiihtNczf5v6AKRyjwEUhQ=="
IV = "r7BXXKkLb8qrSNn05n0qiA=="
ENCRYPTED = (
    "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETK"
    "UQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0"
    "fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeo"
    "rGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKl"
    "aRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=="
)


def test_published_vector_decrypts():
    data = decrypt_user_data(SESSION_KEY, ENCRYPTED, IV, APPID)
    assert data["openId"] == "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
    assert data["nickName"] == "Band"
    assert data["watermark"]["appid"] == APPID


def test_published_vector_is_refused_for_another_appid():
    with pytest.raises(PhoneDecryptFailed) as exc:
        decrypt_user_data(SESSION_KEY, ENCRYPTED, IV, "wx_other")
    assert exc.value.code == "mp_phone_wrong_app"


def test_wrong_session_key_is_refused():
    other_key = base64.b64encode(b"\x00" * 16).decode()
    with pytest.raises(PhoneDecryptFailed):
        decrypt_user_data(other_key, ENCRYPTED, IV, APPID)


def test_malformed_base64_is_refused():
    with pytest.raises(PhoneDecryptFailed) as exc:
        decrypt_user_data(SESSION_KEY, "not base64!!", IV, APPID)
    assert exc.value.code == "mp_phone_data_malformed"


def test_encrypt_then_decrypt_round_trips():
    payload = {"purePhoneNumber": "13812345678", "watermark": {"appid": APPID}}
    assert decrypt_user_data(SESSION_KEY, encrypt_user_data(SESSION_KEY, payload, IV), IV, APPID) == payload


# --- the simulator as WeChat ---------------------------------------------------------------------------

def test_simulator_share_code_is_a_png_carrying_the_scene(session, wecom_server):
    image = WechatClient().wxacode_unlimited("r=ABCDEFGH", "pages/index/index")
    assert image.startswith(b"\x89PNG\r\n\x1a\n") and b"scene\x00r=ABCDEFGH" in image


def test_simulator_refuses_a_scene_longer_than_32_characters(session, wecom_server):
    from miniprogram_api.exceptions import WechatApiError

    with pytest.raises(WechatApiError) as exc:
        WechatClient().wxacode_unlimited("x" * 33)
    assert exc.value.details["errcode"] == 40169


def test_simulator_phone_number_needs_an_access_token(session, wecom_server):
    response = httpx.post(f"{wecom_server.sim_url}/wxa/business/getuserphonenumber", json={"code": "13812345678"})
    assert response.json()["errcode"] == 41001


def test_expired_mini_program_token_is_fetched_again_once(session, wecom_server):
    client = WechatClient()
    assert client.phone_number("13812345678:a") == "13812345678"
    wecom_server.expire_tokens()
    assert client.phone_number("13812345678:b") == "13812345678"
    assert len(wecom_server.calls("cgi-bin/stable_token")) == 2
