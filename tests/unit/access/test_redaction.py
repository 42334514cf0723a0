"""Secrets never appear in captured logs, whatever logger and however they are passed."""

from __future__ import annotations

import logging

import pytest

from siyu.access.redaction import install_secret_redaction, redact
from siyu.bootstrap import Siyu

WECOM_SECRET = "Wq3-corp-secret-7f9aKx"
SMS_SECRET = "LTAI5tSmsAccessKeySecret9"
API_KEY = "sk_ab12cd34_Zm9vYmFyYmF6cXV4cXV1eHF1dXgxMjM0NTY"


def test_a_logged_secret_never_appears_in_captured_logs(
    siyu: Siyu, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # given the secrets are configured the usual way and bootstrap installed the redaction
    monkeypatch.setenv("SIYU_WECOM_CORP_SECRET", WECOM_SECRET)
    monkeypatch.setenv("SIYU_SMS_ACCESS_KEY_SECRET", SMS_SECRET)
    install_secret_redaction(siyu.settings)
    log = logging.getLogger("siyu.channels.wecom.client")
    # when careless code logs them in every form
    with caplog.at_level(logging.DEBUG):
        log.info(
            "token url https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpsecret=%s", WECOM_SECRET
        )
        log.warning("sms signing with %s", SMS_SECRET)
        log.error("request with Authorization: Bearer %s failed", API_KEY)
        log.info('user payload {"username": "zhang.hq", "password": "hunter2-long"}')
        try:
            raise RuntimeError(f"bad key {API_KEY}")
        except RuntimeError:
            log.exception("boom")
    # then none of them is in the captured text
    captured = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    for secret in (WECOM_SECRET, SMS_SECRET, API_KEY, "hunter2-long"):
        assert secret not in captured
    assert "corpsecret=[redacted]" in caplog.text


def test_the_session_secret_from_settings_is_redacted(siyu: Siyu) -> None:
    install_secret_redaction(siyu.settings)
    assert siyu.settings.secret_key not in redact(f"signing with {siyu.settings.secret_key}")


def test_ordinary_text_is_left_alone() -> None:
    assert redact("member 42 bought 2 oolong at SH001") == "member 42 bought 2 oolong at SH001"
