"""The WeCom gateway against the simulator over real HTTP: tokens, retries, backoff, errors."""

from __future__ import annotations

import os
import threading
from datetime import timedelta

import pytest

from bot.gateway import Gateway
from bot.token_cache import DbTokenCache, RedisTokenCache
from bot.wecom_errors import WecomApiError, WecomRateLimited, WecomUnavailable
from core import clock


def gw(**kwargs) -> Gateway:
    kwargs.setdefault("sleep", lambda seconds: None)
    kwargs.setdefault("cache", DbTokenCache())
    return Gateway(**kwargs)


def test_gateway_uses_the_configured_api_base_and_timeouts(session, wecom_server):
    g = gw()
    assert g.api_base == wecom_server.sim_url
    assert g.client.API_BASE_URL == wecom_server.sim_url + "/cgi-bin/"
    assert g.client.timeout == (5.0, 5.0)


def test_many_calls_fetch_one_token(session, wecom_server):
    g = gw()
    for _ in range(5):
        g.get_corp_tag_list()
    assert len(wecom_server.calls("cgi-bin/gettoken")) == 1
    assert len(wecom_server.calls("get_corp_tag_list")) == 5


def test_a_second_gateway_process_reuses_the_cached_token(session, wecom_server):
    gw().get_corp_tag_list()
    gw().get_corp_tag_list()  # a fresh instance (another worker) reads the database cache
    assert len(wecom_server.calls("cgi-bin/gettoken")) == 1


def test_token_is_refreshed_ahead_of_expiry(session, wecom_server):
    clock.freeze(clock.now())
    g = gw()
    g.get_corp_tag_list()
    clock.advance(timedelta(seconds=7200 - 600))  # 10 minutes left: still used
    g.get_corp_tag_list()
    assert len(wecom_server.calls("cgi-bin/gettoken")) == 1
    clock.advance(timedelta(seconds=301))  # under 5 minutes left: refreshed before WeCom refuses it
    g.get_corp_tag_list()
    assert len(wecom_server.calls("cgi-bin/gettoken")) == 2
    assert all(r["errcode"] == 0 for r in wecom_server.requests())


def test_expired_token_is_refreshed_once_and_the_call_retried(session, wecom_server):
    g = gw()
    g.get_corp_tag_list()
    wecom_server.expire_tokens()
    assert g.get_corp_tag_list()["errcode"] == 0
    paths = [(r["path"].rsplit("/", 1)[-1], r["errcode"]) for r in wecom_server.requests()]
    assert paths == [("gettoken", 0), ("get_corp_tag_list", 0), ("get_corp_tag_list", 42001), ("gettoken", 0),
                     ("get_corp_tag_list", 0)]


def test_a_token_refused_twice_is_not_retried_forever(session, wecom_server):
    g = gw()
    wecom_server.arm(42001, times=5, path="get_corp_tag_list")
    with pytest.raises(WecomApiError) as info:
        g.get_corp_tag_list()
    assert info.value.errcode == 42001 and "过期" in info.value.message
    assert len(wecom_server.calls("get_corp_tag_list")) == 2


def test_invalid_token_40014_is_refreshed_too(session, wecom_server):
    g = gw()
    wecom_server.arm(40014, times=1, path="get_corp_tag_list")
    assert g.get_corp_tag_list()["errcode"] == 0
    assert len(wecom_server.calls("cgi-bin/gettoken")) == 2


def test_rate_limit_backs_off_exponentially_then_succeeds(session, wecom_server):
    slept = []
    g = gw(sleep=slept.append, backoff_seconds=0.5)
    wecom_server.arm(45009, times=2, path="mark_tag")
    driver = wecom_server.driver()
    ext = driver.add_external_contact("sales1", name="客户甲").external_userid
    assert g.mark_tag("sales1", ext, add_tag=["etsimtag_ad"])["errcode"] == 0
    assert slept == [0.5, 1.0]
    assert [r["errcode"] for r in wecom_server.calls("mark_tag")] == [45009, 45009, 0]


def test_persistent_rate_limit_gives_up_with_a_chinese_error(session, wecom_server):
    slept = []
    g = gw(sleep=slept.append, max_rate_retries=3, backoff_seconds=1)
    wecom_server.arm(45033, times=10, path="get_corp_tag_list")
    with pytest.raises(WecomRateLimited) as info:
        g.get_corp_tag_list()
    assert slept == [1, 2, 4]
    assert info.value.errcode == 45033 and "频繁" in info.value.message
    assert len(wecom_server.calls("get_corp_tag_list")) == 4


def test_other_errcodes_raise_wecom_api_error_with_errcode(session, wecom_server):
    with pytest.raises(WecomApiError) as info:
        gw().mark_tag("sales1", "wm_nobody", add_tag=["etsimtag_ad"])
    assert info.value.errcode == 84061
    assert info.value.code == "wecom_api_error" and "外部联系人" in info.value.message


def test_wrong_corp_id_is_refused_at_gettoken(session, wecom_server):
    with pytest.raises(WecomApiError) as info:
        gw(corp_id="ww_wrong").get_corp_tag_list()
    assert info.value.errcode == 40013


def test_unreachable_wecom_is_a_chinese_unavailable_error(session):
    with socket_free_port() as port:
        g = gw(api_base=f"http://127.0.0.1:{port}", timeout=(0.5, 0.5))
    with pytest.raises(WecomUnavailable) as info:
        g.get_corp_tag_list()
    assert "无法连接" in info.value.message


def test_two_threads_refreshing_at_once_fetch_once(committed, wecom_server):
    barrier = threading.Barrier(2)
    tokens, errors = [], []

    def work():
        try:
            g = gw()
            barrier.wait(10)
            tokens.append(g.access_token())
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(set(tokens)) == 1
    assert len(wecom_server.calls("cgi-bin/gettoken")) == 1


def test_forced_refreshes_racing_on_the_same_stale_token_fetch_once(committed, wecom_server):
    g1, g2 = gw(), gw()
    stale = g1.access_token()
    assert g2.access_token() == stale
    first = g1.refresh_token(stale=stale)
    second = g2.refresh_token(stale=stale)  # sees the new token in the cache: no second fetch
    assert first == second != stale
    assert len(wecom_server.calls("cgi-bin/gettoken")) == 2


@pytest.mark.skipif(not os.environ.get("SCRM_TEST_REDIS_URL"), reason="needs SCRM_TEST_REDIS_URL")
def test_redis_cache_with_lock_fetches_once_for_concurrent_threads(session, wecom_server):
    import redis

    url = os.environ["SCRM_TEST_REDIS_URL"]
    for key in redis.Redis.from_url(url).scan_iter("scrm:wecom:token:*"):
        redis.Redis.from_url(url).delete(key)
    barrier = threading.Barrier(3)
    tokens = []

    def work():
        g = gw(cache=RedisTokenCache(url))
        barrier.wait(10)
        tokens.append(g.access_token())

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(tokens) == 3 and len(set(tokens)) == 1
    assert len(wecom_server.calls("cgi-bin/gettoken")) == 1


def test_webhook_sends_without_an_access_token(session, wecom_server):
    gw().webhook_send("robot-key-123", "今日新增线索 3 条")
    assert wecom_server.calls("gettoken") == []
    sent = wecom_server.calls("webhook/send")[0]
    assert sent["body"] == {"msgtype": "text", "text": {"content": "今日新增线索 3 条"}}
    assert "access_token" not in sent["query"]


def test_jscode2session_needs_no_access_token(session, wecom_server):
    result = gw().jscode2session("wxapp", "appsecret", "alice:code1")
    assert result["openid"].startswith("osim") and result["session_key"]
    assert wecom_server.calls("gettoken") == []
    with pytest.raises(WecomApiError) as info:
        gw().jscode2session("wxapp", "appsecret", "alice:code1")
    assert info.value.errcode == 40163


def test_app_message_is_recorded_by_the_simulator(session, wecom_server):
    result = gw(agent_id="1000002").send_app_message(["sales1", "sales2"], "您有 1 条新线索")
    assert result["errcode"] == 0
    body = wecom_server.calls("message/send")[0]["body"]
    assert body == {"touser": "sales1|sales2", "msgtype": "text", "agentid": 1000002,
                    "text": {"content": "您有 1 条新线索"}}
    assert wecom_server.state()["app_messages"][0]["touser"] == ["sales1", "sales2"]


class socket_free_port:
    """A port nothing listens on."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()


def test_a_stale_token_refused_inside_an_open_transaction_is_refreshed_without_waiting(committed, wecom_server,
                                                                                     monkeypatch):
    """A token stored before the simulator (or WeCom) forgot it, refused inside a request's transaction: on
    SQLite the refresh must not wait for the writer lock its own thread holds (it used to time out after 30 s)."""
    from sqlalchemy import text

    from core import db
    from core.db import unit_of_work

    monkeypatch.setattr(db, "SQLITE_WRITER_WAIT_SECONDS", 3)  # a wait would fail fast, not pass slowly
    gw().access_token()  # stored in the database cache
    wecom_server.arm(40014, times=1, path="get_corp_tag_list")
    g = gw()  # a fresh process: reads the stored token before its transaction, as the console does
    assert g.access_token()
    with unit_of_work() as s:
        s.execute(text("select 1"))  # the transaction (and, on SQLite, the writer lock) is open
        assert g.get_corp_tag_list()["errcode"] == 0
    assert len(wecom_server.calls("cgi-bin/gettoken")) == 2
    assert g.get_corp_tag_list()["errcode"] == 0  # the new token is kept in the process
    assert len(wecom_server.calls("cgi-bin/gettoken")) == 2


def test_a_fresh_gateways_first_call_inside_an_open_transaction_does_not_wait(committed, wecom_server, monkeypatch):
    from sqlalchemy import text

    from core import db
    from core.db import unit_of_work

    monkeypatch.setattr(db, "SQLITE_WRITER_WAIT_SECONDS", 3)
    gw().access_token()
    with unit_of_work() as s:
        s.execute(text("select 1"))
        assert gw().get_corp_tag_list()["errcode"] == 0
