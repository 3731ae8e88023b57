"""``scrm mp publish-consent`` / ``scrm mp consents``."""

from __future__ import annotations

from click.testing import CliRunner

from core.cli import main
from lending import consent
from tests.lending_product_factories import make_funder


def test_publishing_a_privacy_policy_adds_a_version(session, tmp_path):
    body = tmp_path / "privacy.txt"
    body.write_text("我们如何处理您的个人信息……", encoding="utf-8")
    for expected in (1, 2):
        result = CliRunner().invoke(main, ["mp", "publish-consent", "--kind", "privacy", "--title", "隐私政策",
                                           "--file", str(body)])
        assert result.exit_code == 0, result.output
        assert f"第 {expected} 版" in result.output
    assert consent.latest_document(session, "privacy").version == 2


def test_a_share_authorisation_needs_a_funder(session, tmp_path):
    body = tmp_path / "share.txt"
    body.write_text("授权……", encoding="utf-8")
    result = CliRunner().invoke(main, ["mp", "publish-consent", "--kind", "share", "--title", "共享授权书",
                                       "--file", str(body)])
    assert result.exit_code == 1 and "必须指定资方" in result.output
    funder = make_funder(session)
    session.flush()
    result = CliRunner().invoke(main, ["mp", "publish-consent", "--kind", "share", "--title", "共享授权书",
                                       "--file", str(body), "--funder-id", str(funder.id)])
    assert result.exit_code == 0 and f"share:{funder.id}" in result.output
    listing = CliRunner().invoke(main, ["mp", "consents"])
    assert "共享授权书" in listing.output
