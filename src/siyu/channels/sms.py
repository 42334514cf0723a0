"""SMS through a provider interface; Aliyun Dysms `SendSms` (RPC, signature v1) is implemented.

Signature v1: sort every parameter but Signature, percent-encode names and values (RFC 3986:
space → %20, `~` kept), join with `&`, then StringToSign = "GET&%2F&" + percentEncode(query)
and Signature = base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign)). Verified against the
worked example of Aliyun's documentation (tests/unit/channels).
The outbox idempotency key travels as `OutId` so delivery reports can be matched and a
re-send after a crash is recognisable. Aliyun SMS is template-based: a step names its
`template_code` and `template_param`; the rendered body is kept for the console and audit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

import httpx

from siyu.channels.base import (
    BaseChannel,
    ChannelFailure,
    ChannelSettings,
    OutboundMessage,
    SendResult,
)

# Provider codes that retrying will not fix; anything else (throttling, 5xx) is retried.
TRANSIENT_CODES = frozenset(
    {"isv.BUSINESS_LIMIT_CONTROL", "Throttling.User", "ServiceUnavailable", "InternalError"}
)


class SmsProvider(Protocol):
    def send_sms(
        self, *, phone: str, template_code: str, params: Mapping[str, object], out_id: str
    ) -> str:
        """Send one templated SMS; return the provider's message id or raise ChannelFailure."""


def percent_encode(value: str) -> str:
    return urllib.parse.quote(value, safe="~")


def sign_v1(params: Mapping[str, str], *, secret: str, method: str = "GET") -> str:
    query = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(query)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSms:
    """Aliyun Dysms SendSms over HTTPS GET."""

    def __init__(
        self,
        settings: ChannelSettings,
        *,
        utc_now: Callable[[], datetime],
        client: httpx.Client | None = None,
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        if not (
            settings.sms_access_key_id and settings.sms_access_key_secret and settings.sms_sign_name
        ):
            raise ValueError(
                "SIYU_SMS_ACCESS_KEY_ID, SIYU_SMS_ACCESS_KEY_SECRET and SIYU_SMS_SIGN_NAME "
                "are required"
            )
        self.settings = settings
        self.utc_now = utc_now
        self.nonce = nonce
        self.client = client or httpx.Client(timeout=settings.http_timeout_seconds)

    def request_params(
        self, *, phone: str, template_code: str, params: Mapping[str, object], out_id: str
    ) -> dict[str, str]:
        settings = self.settings
        query = {
            "AccessKeyId": settings.sms_access_key_id or "",
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": out_id,
            "PhoneNumbers": phone,
            "RegionId": settings.sms_region,
            "SignName": settings.sms_sign_name or "",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self.nonce(),
            "SignatureVersion": "1.0",
            "TemplateCode": template_code,
            "TemplateParam": json.dumps(dict(params), ensure_ascii=False, separators=(",", ":")),
            "Timestamp": self.utc_now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        query["Signature"] = sign_v1(query, secret=settings.sms_access_key_secret or "")
        return query

    def send_sms(
        self, *, phone: str, template_code: str, params: Mapping[str, object], out_id: str
    ) -> str:
        query = self.request_params(
            phone=phone, template_code=template_code, params=params, out_id=out_id
        )
        try:
            response = self.client.get(self.settings.sms_endpoint, params=query)
            data = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ChannelFailure(f"aliyun sms: {error}") from error
        code = str(data.get("Code", f"HTTP{response.status_code}"))
        if code != "OK":
            transient = code in TRANSIENT_CODES or response.status_code >= 500
            raise ChannelFailure(
                f"aliyun sms {code}: {data.get('Message', '')}", permanent=not transient
            )
        return str(data.get("BizId", ""))


class SmsChannel(BaseChannel):
    name = "sms"

    def __init__(self, provider: SmsProvider) -> None:
        self.provider = provider

    def send(self, message: OutboundMessage) -> SendResult:
        template_code = message.payload.get("template_code")
        if not template_code:
            raise ChannelFailure(
                "sms: the step has no template_code (provider templates are required)",
                permanent=True,
            )
        raw = message.payload.get("template_param")
        params: Mapping[str, object] = raw if isinstance(raw, dict) else {"content": message.body}
        out_id = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[
            :32
        ]  # OutId max length
        biz_id = self.provider.send_sms(
            phone=message.recipient, template_code=str(template_code), params=params, out_id=out_id
        )
        return SendResult(provider_message_id=biz_id)
