"""Channels against real local servers: aiosmtpd for email, fake Aliyun and webhook HTTP servers."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from aiosmtpd.controller import Controller

from siyu.channels.base import ChannelSettings
from siyu.channels.email import EmailChannel
from siyu.channels.sms import AliyunSms, SmsChannel, sign_v1
from siyu.channels.webhook import WebhookChannel, verify
from siyu.delivery.interface import ChannelFailure, OutboundMessage

SMTP_PORT, SMS_PORT, WEBHOOK_PORT = 8825, 8831, 8832


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_inbox() -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    yield inbox
    controller.stop()


def _message(channel: str, recipient: str, **payload: object) -> OutboundMessage:
    return OutboundMessage(
        idempotency_key="j:new-member-sop:v1:welcome:e1:o1",
        channel=channel,
        recipient=recipient,
        subject="Welcome to Demo Tea",
        body="Wang Fang, welcome!",
        payload=dict(payload),
        member_id=1,
    )


def test_email_is_delivered_over_smtp_with_a_stable_message_id(smtp_inbox: Inbox) -> None:
    channel = EmailChannel(ChannelSettings(smtp_host="127.0.0.1", smtp_port=SMTP_PORT))

    first = channel.send(_message("email", "wang.fang@example.cn"))
    again = channel.send(_message("email", "wang.fang@example.cn"))

    assert [m.rcpt_tos for m in smtp_inbox.messages] == [["wang.fang@example.cn"]] * 2
    assert b"Subject: Welcome to Demo Tea" in smtp_inbox.messages[0].content
    assert first.provider_message_id == again.provider_message_id  # a re-send is recognisable


def test_email_to_an_unreachable_server_is_a_retryable_failure() -> None:
    channel = EmailChannel(
        ChannelSettings(smtp_host="127.0.0.1", smtp_port=8899, http_timeout_seconds=2)
    )

    with pytest.raises(ChannelFailure) as failure:
        channel.send(_message("email", "wang.fang@example.cn"))

    assert failure.value.permanent is False


class _Recorder(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []
    reply: ClassVar[tuple[int, dict[str, object]]] = (200, {})

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).requests.append((self.path, dict(self.headers), self.rfile.read(length)))
        status, body = type(self).reply
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def http_server(request: pytest.FixtureRequest) -> Iterator[type[_Recorder]]:
    port = request.param
    handler = type("Handler", (_Recorder,), {"requests": [], "reply": (200, {})})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler
    server.shutdown()
    server.server_close()


def _sms(port: int) -> SmsChannel:
    settings = ChannelSettings(
        sms_access_key_id="testId",
        sms_access_key_secret="testSecret",
        sms_sign_name="Demo Tea",
        sms_endpoint=f"http://127.0.0.1:{port}/",
    )
    return SmsChannel(AliyunSms(settings, utc_now=lambda: datetime(2026, 6, 18, 2, 0, tzinfo=UTC)))


@pytest.mark.parametrize("http_server", [SMS_PORT], indirect=True)
def test_sms_is_sent_through_aliyun_sendsms_with_a_valid_signature(
    http_server: type[_Recorder],
) -> None:
    http_server.reply = (
        200,
        {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "r1"},
    )

    result = _sms(SMS_PORT).send(
        _message(
            "sms", "13800138000", template_code="SMS_1001", template_param={"name": "Wang Fang"}
        )
    )

    assert result.provider_message_id == "900619746936498440^0"
    path, _, _ = http_server.requests[0]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
    signature = query.pop("Signature")
    assert signature == sign_v1(query, secret="testSecret")  # what Aliyun's server checks
    assert (query["Action"], query["PhoneNumbers"], query["TemplateCode"]) == (
        "SendSms",
        "13800138000",
        "SMS_1001",
    )
    assert json.loads(query["TemplateParam"]) == {"name": "Wang Fang"}
    assert len(query["OutId"]) == 32


@pytest.mark.parametrize("http_server", [SMS_PORT], indirect=True)
def test_sms_invalid_number_is_permanent_and_throttling_is_retried(
    http_server: type[_Recorder],
) -> None:
    message = _message("sms", "13800138000", template_code="SMS_1001")
    http_server.reply = (200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "invalid mobile"})
    with pytest.raises(ChannelFailure) as illegal:
        _sms(SMS_PORT).send(message)
    http_server.reply = (200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "limit"})
    with pytest.raises(ChannelFailure) as throttled:
        _sms(SMS_PORT).send(message)

    assert (illegal.value.permanent, throttled.value.permanent) == (True, False)


@pytest.mark.parametrize("http_server", [WEBHOOK_PORT], indirect=True)
def test_webhook_posts_a_signed_timestamped_body(http_server: type[_Recorder]) -> None:
    channel = WebhookChannel(
        ChannelSettings(webhook_secret="s3cret"), unix_now=lambda: 1_781_748_000
    )

    channel.send(
        _message(
            "webhook", f"http://127.0.0.1:{WEBHOOK_PORT}/hooks/crm", member_id=1, step="welcome"
        )
    )

    _, headers, body = http_server.requests[0]
    assert json.loads(body) == {"member_id": 1, "step": "welcome"}
    assert headers["X-Siyu-Idempotency-Key"] == "j:new-member-sop:v1:welcome:e1:o1"
    assert verify(
        secret="s3cret",
        timestamp=int(headers["X-Siyu-Timestamp"]),
        body=body,
        signature=headers["X-Siyu-Signature"],
        now=1_781_748_030,
    )


@pytest.mark.parametrize("http_server", [WEBHOOK_PORT], indirect=True)
def test_webhook_4xx_is_permanent_and_5xx_is_retried(http_server: type[_Recorder]) -> None:
    channel = WebhookChannel(
        ChannelSettings(webhook_secret="s3cret"), unix_now=lambda: 1_781_748_000
    )
    url = f"http://127.0.0.1:{WEBHOOK_PORT}/hooks/crm"
    http_server.reply = (400, {})
    with pytest.raises(ChannelFailure) as bad_request:
        channel.send(_message("webhook", url))
    http_server.reply = (503, {})
    with pytest.raises(ChannelFailure) as unavailable:
        channel.send(_message("webhook", url))

    assert (bad_request.value.permanent, unavailable.value.permanent) == (True, False)
