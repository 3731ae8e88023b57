"""`scrm serve` refuses to start without its secrets, naming the command that writes them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(tmp_path, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRM_")}
    env.update(SCRM_ENV="development", SCRM_DATABASE_URL=f"sqlite:///{tmp_path}/scrm.db", **overrides)
    # In an empty directory: no .env to read the secrets from. A server that starts would outlive the timeout.
    return subprocess.run([sys.executable, "-m", "core.cli", "serve", "--port", str(_free_port())],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def test_serve_without_secrets_fails_at_startup_naming_init_secrets(tmp_path):
    try:
        proc = _serve(tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("scrm serve started without its secrets")
    assert proc.returncode != 0
    assert "scrm init-secrets" in proc.stderr
    assert "SCRM_PII_KEYS" in proc.stderr and "SCRM_BLIND_INDEX_KEY" in proc.stderr


def test_serve_with_a_malformed_pii_key_fails_at_startup(tmp_path):
    try:
        proc = _serve(tmp_path, SCRM_SECRET_KEY="x" * 32, SCRM_PII_KEYS="k1:c2hvcnQ=",
                      SCRM_BLIND_INDEX_KEY="A" * 44)
    except subprocess.TimeoutExpired:
        pytest.fail("scrm serve started with a malformed key")
    assert proc.returncode != 0
    assert "SCRM_PII_KEYS" in proc.stderr and "AES-256" in proc.stderr
