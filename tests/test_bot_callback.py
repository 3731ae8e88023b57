"""/wecom/callback: verified, stored once under its event key, answered at once, processed exactly once."""

import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot import inbox
from bot.models import WecomInbox
from core import audit
from core.audit import AuditLog
from core.db import unit_of_work
from core.web import create_app
from tests.wecom_helpers import event_xml, signed_request

TEST_KIND = "event:scrm_test_event"


@pytest.fixture
def counted_handler():
    """A handler that leaves one audit row per run, so 'exactly once' is countable."""

    def handler(session, fields):
        audit.record(session, "test.handled", detail=fields.get("Marker"))

    inbox.HANDLERS[TEST_KIND] = handler
    yield
    inbox.HANDLERS.pop(TEST_KIND, None)


@pytest.fixture
def client(session):
    return TestClient(create_app(start_tasks=False))


def stored(session):
    return session.scalar(select(func.count()).select_from(WecomInbox))


def handled(session, marker):
    return session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "test.handled",
                                                                           AuditLog.detail == marker))


def test_a_signed_event_is_stored_answered_and_processed_once(session, client, task_runner, counted_handler):
    url, body = signed_request(event_xml(MsgType="event", Event="scrm_test_event", Marker="m1", CreateTime="1"))
    response = client.post(url, content=body)
    assert (response.status_code, response.text) == (200, "success")
    assert stored(session) == 1 and handled(session, "m1") == 0  # answered before any processing
    assert task_runner.drain() == [inbox.PROCESS_TASK]
    assert handled(session, "m1") == 1


def test_a_redelivery_is_acknowledged_and_not_processed_again(session, client, task_runner, counted_handler):
    xml = event_xml(MsgType="event", Event="scrm_test_event", Marker="m2", CreateTime="2")
    for _ in range(3):  # WeCom re-delivers with a fresh nonce and signature
        url, body = signed_request(xml)
        assert client.post(url, content=body).text == "success"
    task_runner.drain()
    assert stored(session) == 1 and handled(session, "m2") == 1


def test_a_replayed_nonce_is_refused(session, client, task_runner):
    url, body = signed_request(event_xml(MsgType="event", Event="scrm_test_event", CreateTime="3"), nonce="same")
    assert client.post(url, content=body).status_code == 200
    url2, body2 = signed_request(event_xml(MsgType="event", Event="scrm_test_event", CreateTime="4"), nonce="same",
                                 timestamp=url.split("timestamp=")[1].split("&")[0])
    assert client.post(url2, content=body2).status_code == 403
    assert stored(session) == 1


def test_a_byte_identical_redelivery_of_a_request_is_acknowledged_and_stores_nothing_new(
        session, client, task_runner, counted_handler):
    url, body = signed_request(event_xml(MsgType="event", Event="scrm_test_event", Marker="again", CreateTime="6"))
    for _ in range(3):  # WeCom got no answer in time and sends the very same request again
        response = client.post(url, content=body)
        assert (response.status_code, response.text) == (200, "success")
    task_runner.drain()
    assert stored(session) == 1 and handled(session, "again") == 1


def test_a_reused_nonce_with_another_body_is_refused_after_a_redelivery(session, client, task_runner):
    url, body = signed_request(event_xml(MsgType="event", Event="scrm_test_event", CreateTime="7"), nonce="twice")
    assert client.post(url, content=body).status_code == 200
    assert client.post(url, content=body).status_code == 200
    timestamp = url.split("timestamp=")[1].split("&")[0]
    url2, body2 = signed_request(event_xml(MsgType="event", Event="scrm_test_event", CreateTime="8"), nonce="twice",
                                 timestamp=timestamp)
    response = client.post(url2, content=body2)
    assert response.status_code == 403 and response.json()["code"] == "wecom_nonce_replayed"
    assert stored(session) == 1


def test_a_forged_signature_stores_nothing(session, client):
    url, body = signed_request(event_xml(MsgType="event", Event="scrm_test_event", CreateTime="5"))
    forged = url.replace("msg_signature=", "msg_signature=0")
    assert client.post(forged, content=body).status_code == 403
    assert stored(session) == 0


def test_a_stale_timestamp_stores_nothing(session, client):
    url, body = signed_request(event_xml(MsgType="event", Event="scrm_test_event"), timestamp="1409659813")
    assert client.post(url, content=body).status_code == 403
    assert stored(session) == 0


@pytest.mark.parametrize("body", [
    b"<xml><Encrypt>broken",
    b'<!DOCTYPE x [<!ENTITY e "boom">]><xml><Encrypt>&e;</Encrypt></xml>',
    b"<xml>" + b"x" * 70_000 + b"</xml>",
    b"<xml><NoEncrypt>1</NoEncrypt></xml>",
])
def test_malformed_entity_laden_or_oversized_bodies_get_a_4xx_and_store_nothing(session, client, body):
    response = client.post("/wecom/callback?msg_signature=a&timestamp=1&nonce=1", content=body)
    assert 400 <= response.status_code < 500
    assert stored(session) == 0


def test_url_verification_returns_the_decrypted_echo(session, client):
    import time
    from urllib.parse import urlencode

    from bot import config
    from bot.callback_crypto import signature

    crypto = config.callback_crypto()
    body, _ = crypto.seal("echo-12345", "n", "1")
    echo = body.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    ts = str(int(time.time()))
    sig = signature(crypto.token, ts, "nonce1", echo)
    response = client.get("/wecom/callback?" + urlencode({"msg_signature": sig, "timestamp": ts, "nonce": "nonce1",
                                                          "echostr": echo}))
    assert (response.status_code, response.text) == (200, "echo-12345")


def test_add_external_contact_goes_to_the_urgent_queue(session, client, task_runner):
    url, body = signed_request(event_xml(MsgType="event", Event="change_external_contact",
                                         ChangeType="add_external_contact", UserID="u1", ExternalUserID="wm1",
                                         CreateTime="6"))
    client.post(url, content=body)
    assert [name for name, _, _ in task_runner.sent] == [inbox.PROCESS_URGENT_TASK]


def test_stored_payload_holds_no_plaintext_phone(session, client):
    url, body = signed_request(event_xml(MsgType="text", Content="查 13812345678", MsgId="99", FromUserName="u1"))
    client.post(url, content=body)
    row = session.scalar(select(WecomInbox))
    assert "13812345678" not in row.payload_enc and "13812345678" not in row.summary
    assert inbox.payload(row)["Content"] == "查 13812345678"


def test_concurrent_workers_process_an_event_once(committed, counted_handler):
    with unit_of_work() as s:
        row = inbox.receive(s, {"MsgType": "event", "Event": "scrm_test_event", "Marker": "race"}, "nz", "1")
        inbox_id = row.id
    barrier = threading.Barrier(4)
    errors = []

    def work():
        try:
            barrier.wait(10)
            with unit_of_work() as s:
                inbox.process(s, inbox_id)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with committed() as s:
        assert handled(s, "race") == 1


def _incoming(marker, nonce, **extra):
    return inbox.Incoming({"MsgType": "event", "Event": "scrm_test_event", "Marker": marker, **extra}, nonce,
                          "1700000000")


def test_a_batch_is_stored_in_one_go_and_its_processing_sent_as_one_task(session, task_runner, counted_handler):
    out = inbox.receive_many(session, [_incoming(f"b{i}", f"nb{i}") for i in range(5)])
    session.commit()
    assert all(isinstance(i, int) for i in out) and len(set(out)) == 5
    assert [(name, args) for name, args, _ in task_runner.sent] == [(inbox.PROCESS_TASK, tuple(out))]
    task_runner.drain()
    assert [handled(session, f"b{i}") for i in range(5)] == [1] * 5


def test_the_same_nonce_twice_in_one_batch_refuses_the_second_and_stores_nothing_of_it(session, task_runner):
    out = inbox.receive_many(session, [_incoming("first", "dup"), _incoming("second", "dup")])
    assert isinstance(out[0], int) and isinstance(out[1], inbox.NonceReplayed)
    assert stored(session) == 1


def test_the_same_request_twice_in_one_batch_is_one_event_and_one_acknowledged_redelivery(session, task_runner):
    first = inbox.Incoming({"MsgType": "event", "Event": "scrm_test_event", "Marker": "x"}, "rb", "1700000000",
                           inbox.body_digest(b"<xml>same</xml>"))
    out = inbox.receive_many(session, [first, first])
    assert isinstance(out[0], int) and out[1] is None
    assert stored(session) == 1
    (again,) = inbox.receive_many(session, [first])
    assert again is None
    other = inbox.Incoming(first.fields, "rb", "1700000000", inbox.body_digest(b"<xml>other</xml>"))
    assert isinstance(inbox.receive_many(session, [other])[0], inbox.NonceReplayed)


def test_a_redelivery_inside_one_batch_is_acknowledged_and_stored_once(session, task_runner):
    out = inbox.receive_many(session, [_incoming("same", "r1"), _incoming("same", "r2")])
    assert isinstance(out[0], int) and out[1] is None
    assert stored(session) == 1
    session.commit()
    assert [args for _, args, _ in task_runner.sent] == [(out[0],)]


def test_a_batch_mixing_new_known_and_replayed_events(session, task_runner):
    (known,) = inbox.receive_many(session, [_incoming("known", "k1")])
    out = inbox.receive_many(session, [_incoming("known", "k2"), _incoming("new", "k3"), _incoming("other", "k1")])
    assert out[0] is None  # a re-delivery of a stored event: acknowledged, not stored again
    assert isinstance(out[1], int) and out[1] != known
    assert isinstance(out[2], inbox.NonceReplayed)
    assert stored(session) == 2


def test_urgent_events_are_sent_in_small_groups(session, task_runner):
    items = [inbox.Incoming({"MsgType": "event", "Event": "change_external_contact",
                             "ChangeType": "add_external_contact", "UserID": "u1", "ExternalUserID": f"wmx{i}",
                             "CreateTime": str(i)}, f"nu{i}", "1700000000") for i in range(inbox.URGENT_TASK_IDS + 1)]
    items.append(_incoming("plain", "np"))
    inbox.receive_many(session, items)
    session.commit()
    sent = [(name, len(args)) for name, args, _ in task_runner.sent]
    assert sent == [(inbox.PROCESS_URGENT_TASK, inbox.URGENT_TASK_IDS), (inbox.PROCESS_URGENT_TASK, 1),
                    (inbox.PROCESS_TASK, 1)]


def test_one_failing_event_does_not_hold_back_the_others_of_its_task(session, task_runner, counted_handler):
    def failing(session, fields):
        raise RuntimeError("handler crashed")

    inbox.HANDLERS["event:scrm_test_boom"] = failing
    try:
        out = inbox.receive_many(session, [
            _incoming("before", "f1"),
            inbox.Incoming({"MsgType": "event", "Event": "scrm_test_boom"}, "f2", "1700000000"),
            _incoming("after", "f3")])
        session.commit()
        (name, args, _), = task_runner.sent
        with pytest.raises(RuntimeError):
            from core.tasks import run_task

            run_task(name, args, {})
    finally:
        inbox.HANDLERS.pop("event:scrm_test_boom", None)
    assert handled(session, "before") == 1 and handled(session, "after") == 1
    boom = session.get(WecomInbox, out[1])
    session.refresh(boom)
    assert (boom.status, boom.attempts) == ("pending", 1)


def test_concurrent_callbacks_are_each_answered_and_stored(committed, counted_handler, task_runner):
    import concurrent.futures

    app_client = TestClient(create_app(start_tasks=False))
    requests = [signed_request(event_xml(MsgType="event", Event="scrm_test_event", Marker=f"c{i}",
                                         CreateTime=str(i))) for i in range(40)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda r: app_client.post(r[0], content=r[1]), requests))
    assert [(a.status_code, a.text) for a in answers] == [(200, "success")] * 40
    with committed() as s:
        assert stored(s) == 40


def test_other_methods_are_not_allowed(session, client):
    assert client.put("/wecom/callback", content=b"<xml/>").status_code == 405
