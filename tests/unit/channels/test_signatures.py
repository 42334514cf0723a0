"""Signatures that providers and receivers verify: Aliyun Dysms v1 and the webhook HMAC."""

from __future__ import annotations

from datetime import UTC, datetime

from siyu.channels.base import ChannelSettings
from siyu.channels.sms import AliyunSms, sign_v1
from siyu.channels.webhook import sign, verify


def test_aliyun_signature_matches_the_worked_example_of_the_documentation() -> None:
    # given the parameters of Aliyun's documented SendSms example (AccessKeySecret "testSecret")
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }

    # then our signature is the documented one
    assert sign_v1(params, secret="testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_request_carries_every_common_parameter() -> None:
    settings = ChannelSettings(
        sms_access_key_id="testId", sms_access_key_secret="testSecret", sms_sign_name="Demo Tea"
    )
    sms = AliyunSms(
        settings, utc_now=lambda: datetime(2026, 6, 18, 2, 0, tzinfo=UTC), nonce=lambda: "n-1"
    )

    query = sms.request_params(
        phone="13800138000", template_code="SMS_1", params={"name": "王芳"}, out_id="o1"
    )

    assert query["Timestamp"] == "2026-06-18T02:00:00Z"
    assert query["TemplateParam"] == '{"name":"王芳"}'
    unsigned = {k: v for k, v in query.items() if k != "Signature"}
    assert query["Signature"] == sign_v1(unsigned, secret="testSecret")


def test_webhook_signature_verifies_and_refuses_tampering_and_replays() -> None:
    body = b'{"member_id": 1}'
    signature = sign(secret="s3cret", timestamp=1_781_748_000, body=body)

    assert signature.startswith("sha256=")
    assert verify(
        secret="s3cret", timestamp=1_781_748_000, body=body, signature=signature, now=1_781_748_100
    )
    assert not verify(
        secret="s3cret", timestamp=1_781_748_000, body=b"{}", signature=signature, now=1_781_748_100
    )
    assert not verify(
        secret="s3cret", timestamp=1_781_748_000, body=body, signature=signature, now=1_781_749_000
    )
