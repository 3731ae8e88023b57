"""The official WXBizMsgCrypt sample vectors (../shared/reference/wecom-crypto-vectors.md)."""

import pytest

from bot.callback_crypto import BadSignature, CallbackCrypto, CallbackRejected, StaleTimestamp, parse_xml

TOKEN, AES_KEY, CORP_ID = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
ECHO = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
BODY = (b"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiP"
        b"dvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66w"
        b"iSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3"
        b"Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4X"
        b"XZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7"
        b"Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>")


def crypto(corp_id=CORP_ID, window=0):
    return CallbackCrypto(TOKEN, AES_KEY, corp_id, window_seconds=window)


def test_url_verification_vector():
    assert crypto().verify_url("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780",
                               ECHO) == "1616140317555161061"


def test_message_vector_decrypts_to_the_text_message():
    _, fields = crypto().open_message("477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", BODY)
    assert (fields["FromUserName"], fields["Content"], fields["AgentID"], fields["MsgId"]) == (
        "mycreate", "hello", "218", "4561255354251345929")


def test_the_same_body_for_another_corp_is_refused():
    with pytest.raises(CallbackRejected):
        crypto(corp_id="ww_other").open_message("477715d11cdb4164915debcba66cb864d751f3e6", "1409659813",
                                                "1372623149", BODY)


def test_a_wrong_signature_is_refused():
    with pytest.raises(BadSignature):
        crypto().open_message("0" * 40, "1409659813", "1372623149", BODY)


def test_a_stale_timestamp_is_refused_when_the_window_is_on():
    with pytest.raises(StaleTimestamp):
        crypto(window=300).open_message("477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", BODY)


def test_a_sealed_message_round_trips():
    c = crypto(window=300)
    import time

    ts = str(int(time.time()))
    body, sig = c.seal("<xml><Event><![CDATA[change_external_contact]]></Event></xml>", "n1", ts)
    _, fields = c.open_message(sig, ts, "n1", body.encode())
    assert fields["Event"] == "change_external_contact"


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><xml><Encrypt>&lol2;</Encrypt></xml>',
    b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><xml><Encrypt>a</Encrypt></xml>',
    b"<xml><Encrypt>unterminated",
    b"not xml at all",
    b"<xml>" + b"A" * 70000 + b"</xml>",
])
def test_entity_laden_malformed_or_oversized_bodies_are_refused(body):
    with pytest.raises(CallbackRejected):
        parse_xml(body)
