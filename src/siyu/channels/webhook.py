"""Webhook channel: POST the JSON payload, signed with HMAC-SHA256 over "<timestamp>.<body>".

Headers: X-Siyu-Timestamp (unix seconds), X-Siyu-Signature (`sha256=<hex>`),
X-Siyu-Idempotency-Key. A receiver recomputes the HMAC, rejects stale timestamps (replays), and
de-duplicates on the idempotency key. 4xx other than 408/429 is permanent; the rest is retried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable

import httpx

from siyu.channels.base import (
    BaseChannel,
    ChannelFailure,
    ChannelSettings,
    OutboundMessage,
    SendResult,
)

RETRYABLE_4XX = (408, 409, 425, 429)


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(
    *, secret: str, timestamp: int, body: bytes, signature: str, now: int, tolerance: int = 300
) -> bool:
    """What a receiver does: constant-time comparison and a freshness window against replays."""
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret=secret, timestamp=timestamp, body=body), signature)


class WebhookChannel(BaseChannel):
    name = "webhook"

    def __init__(
        self,
        settings: ChannelSettings,
        *,
        unix_now: Callable[[], int],
        client: httpx.Client | None = None,
    ) -> None:
        if not settings.webhook_secret:
            raise ValueError("SIYU_WEBHOOK_SECRET is not set")
        self.secret = settings.webhook_secret
        self.unix_now = unix_now
        self.client = client or httpx.Client(timeout=settings.http_timeout_seconds)

    def send(self, message: OutboundMessage) -> SendResult:
        body = json.dumps(message.payload, ensure_ascii=False, sort_keys=True, default=str).encode()
        timestamp = self.unix_now()
        headers = {
            "Content-Type": "application/json",
            "X-Siyu-Timestamp": str(timestamp),
            "X-Siyu-Signature": sign(secret=self.secret, timestamp=timestamp, body=body),
            "X-Siyu-Idempotency-Key": message.idempotency_key,
        }
        try:
            response = self.client.post(message.recipient, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise ChannelFailure(f"webhook {message.recipient}: {error}") from error
        if response.status_code >= 400:
            permanent = response.status_code < 500 and response.status_code not in RETRYABLE_4XX
            raise ChannelFailure(
                f"webhook {message.recipient}: HTTP {response.status_code}", permanent=permanent
            )
        return SendResult(
            provider_message_id=response.headers.get("X-Request-Id", message.idempotency_key)
        )
