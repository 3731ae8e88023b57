"""Helpers and fixtures of the mini-program API tests (registered as a plugin in tests/conftest.py)."""

from __future__ import annotations

import base64
import itertools
import os
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import reset_settings_cache
from miniprogram_api import wechat

_seq = itertools.count(1)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"


def png(size: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xff" * size for _ in range(size))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class Mp:
    """A mini-program user talking to /mp (in-process) while WeChat is the simulator over real HTTP."""

    def __init__(self, client: TestClient, server: Any) -> None:
        self.client = client
        self.server = server
        self.token: str | None = None

    @staticmethod
    def code(identity: str) -> str:
        return f"{identity}:c{next(_seq)}"

    def login(self, identity: str = "alice", scene: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code(identity)}
        if scene:
            body["scene"] = scene
        response = self.client.post("/mp/login", json=body)
        assert response.status_code == 200, response.text
        data = response.json()
        self.token = data["token"]
        return data

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get("/mp" + path, headers=self.headers, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.post("/mp" + path, json=json, headers=self.headers, **kw)

    def patch(self, path: str, json: Any = None) -> Any:
        return self.client.patch("/mp" + path, json=json, headers=self.headers)

    def delete(self, path: str) -> Any:
        return self.client.delete("/mp" + path, headers=self.headers)

    def bind_phone(self, phone: str) -> Any:
        return self.post("/phone/code", {"code": f"{phone}:p{next(_seq)}"})

    def upload(self, draft_id: int, kind: str, data: bytes, filename: str = "a.jpg",
               content_type: str = "image/jpeg") -> Any:
        return self.client.post(f"/mp/applications/{draft_id}/documents", headers=self.headers,
                                data={"kind": kind}, files={"file": (filename, data, content_type)})


def sim_session_key(identity: str) -> str:
    """The session key the simulator hands out for an identity (bot.simulator.state.derived_session_key)."""
    import hashlib

    return base64.b64encode(hashlib.sha256(identity.encode()).digest()[:16]).decode()


def encrypted_phone(identity: str, phone: str, appid: str) -> dict[str, str]:
    iv = base64.b64encode(os.urandom(16)).decode()
    data = wechat.encrypt_user_data(sim_session_key(identity), {
        "phoneNumber": phone, "purePhoneNumber": phone, "countryCode": "86",
        "watermark": {"timestamp": 1700000000, "appid": appid}}, iv)
    return {"encrypted_data": data, "iv": iv}


@pytest.fixture
def mp_app(session, wecom_server, tmp_path, monkeypatch) -> Iterator[TestClient]:
    """The service in-process (its units of work join the test transaction), uploads under tmp_path."""
    from core.web import create_app

    monkeypatch.setenv("SCRM_MP_UPLOAD_DIR", str(tmp_path / "uploads"))
    # Rate limits count in the database (rolled back with the test), also when the suite runs on Redis:
    # Redis counters would outlive the test and add up across tests.
    monkeypatch.setenv("SCRM_REDIS_URL", "")
    reset_settings_cache()
    wechat.reset_token_cache()
    client = TestClient(create_app(start_tasks=False))
    try:
        yield client
    finally:
        client.close()
        wechat.reset_token_cache()
        monkeypatch.undo()
        reset_settings_cache()


@pytest.fixture
def mp(mp_app, wecom_server) -> Mp:
    return Mp(mp_app, wecom_server)


@pytest.fixture
def mp2(mp_app, wecom_server) -> Mp:
    """A second customer on the same service."""
    return Mp(mp_app, wecom_server)


# --- products with their consent documents, and a customer ready to apply --------------------------------

VALID_ID = "440301198805151238"
OTHER_ID = "110101199003074514"


def make_offer(session: Any, **terms: Any) -> Any:
    """A product (10,000–100,000 yuan, 12/24 months) with the privacy policy and its funder's share
    authorisation published."""
    from lending import consent
    from tests.lending_product_factories import make_product

    product = make_product(session, **terms)
    if consent.latest_document(session, consent.PRIVACY_CODE) is None:
        consent.publish(session, "privacy", "隐私政策", "我们如何收集和使用您的个人信息……")
    consent.publish(session, "share", f"向{product.funder.name}共享个人信息授权书", "授权共享……",
                    funder_id=product.funder_id)
    session.flush()
    return product


def consent_all(user: Mp) -> None:
    for doc in user.get("/consents").json()["documents"]:
        assert user.post("/consents", {"document_id": doc["id"]}).status_code == 200


def ready_draft(user: Mp, product_id: int, *, phone: str = "13812345678", id_number: str = VALID_ID) -> int:
    """Phone bound, a complete draft with both ID photos; returns the draft id."""
    assert user.bind_phone(phone).status_code == 200
    response = user.post("/applications", {"product_id": product_id, "amount": "50000.00", "term_months": 12,
                                           "name": "张三", "id_number": id_number, "income": "12000",
                                           "occupation": "工程师"})
    assert response.status_code == 200, response.text
    draft_id = response.json()["id"]
    assert user.upload(draft_id, "id_front", JPEG).status_code == 200
    assert user.upload(draft_id, "id_back", png(), "b.png", "image/png").status_code == 200
    return draft_id
