"""Callback crypto against the official WXBizMsgCrypt sample and the documented algorithm."""

from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from siyu.channels.wecom.crypto import (
    CallbackCrypto,
    aes_key,
    parse_xml,
    pkcs7_pad,
    pkcs7_unpad,
    signature,
)
from siyu.channels.wecom.errors import WeComCryptoError, WeComErrorCode

# The official sample (WXBizMsgCrypt Sample.* in every language of the WeCom SDK).
TOKEN = "QDG6eK"
CORP_ID = "wx5823bf96d3bd56c7"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SAMPLE_SIG = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
SAMPLE_TS = "1409659589"
SAMPLE_NONCE = "263014780"
SAMPLE_ECHO = (
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
)

ADD_EVENT = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
    "<CreateTime>1781748000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    "<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType>"
    "<UserID><![CDATA[xiaoli]]></UserID><ExternalUserID><![CDATA[wmWangFang]]></ExternalUserID>"
    "<State><![CDATA[c-sh001]]></State><WelcomeCode><![CDATA[WELCOME-1]]></WelcomeCode></xml>"
)


@pytest.fixture
def crypto() -> CallbackCrypto:
    return CallbackCrypto(token=TOKEN, encoding_aes_key=AES_KEY, receive_id=CORP_ID)


def test_official_sample_url_verification_returns_the_echostr(crypto: CallbackCrypto) -> None:
    echo = crypto.verify_url(
        msg_signature=SAMPLE_SIG, timestamp=SAMPLE_TS, nonce=SAMPLE_NONCE, echostr=SAMPLE_ECHO
    )

    assert echo == "1616140317555161061"


def test_signature_is_sha1_of_the_sorted_concatenation() -> None:
    assert (
        signature(token=TOKEN, timestamp=SAMPLE_TS, nonce=SAMPLE_NONCE, encrypt=SAMPLE_ECHO)
        == SAMPLE_SIG
    )


def test_encrypt_follows_the_documented_layout(crypto: CallbackCrypto) -> None:
    # given a fixed random prefix, when we encrypt, then decrypting by hand with AES-256-CBC
    # (IV = key[:16]) gives prefix | big-endian length | message | corp id | 32-byte PKCS#7
    prefix = b"0123456789abcdef"
    envelope = crypto.encrypt(message="hello", timestamp="1", nonce="n", random_prefix=prefix)
    key = base64.b64decode(AES_KEY + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(base64.b64decode(envelope.encrypt)) + decryptor.finalize()

    body = prefix + struct.pack(">I", 5) + b"hello" + CORP_ID.encode()
    assert len(plain) == 64
    assert plain == body + bytes([64 - len(body)]) * (64 - len(body))


def test_round_trip_keeps_unicode_messages(crypto: CallbackCrypto) -> None:
    envelope = crypto.encrypt(message=ADD_EVENT + "王芳", timestamp="1781748000", nonce="42")

    plain = crypto.decrypt(
        msg_signature=envelope.msg_signature,
        timestamp="1781748000",
        nonce="42",
        encrypt=envelope.encrypt,
    )

    assert plain == ADD_EVENT + "王芳"


def test_a_tampered_signature_is_refused(crypto: CallbackCrypto) -> None:
    envelope = crypto.encrypt(message=ADD_EVENT, timestamp="1", nonce="n")

    with pytest.raises(WeComCryptoError) as refused:
        crypto.decrypt(msg_signature="0" * 40, timestamp="1", nonce="n", encrypt=envelope.encrypt)

    assert refused.value.code is WeComErrorCode.INVALID_SIGNATURE


def test_a_changed_timestamp_breaks_the_signature(crypto: CallbackCrypto) -> None:
    envelope = crypto.encrypt(message=ADD_EVENT, timestamp="1", nonce="n")

    with pytest.raises(WeComCryptoError) as refused:
        crypto.decrypt(
            msg_signature=envelope.msg_signature, timestamp="2", nonce="n", encrypt=envelope.encrypt
        )

    assert refused.value.code is WeComErrorCode.INVALID_SIGNATURE


def test_a_message_for_another_corp_is_refused(crypto: CallbackCrypto) -> None:
    other = CallbackCrypto(token=TOKEN, encoding_aes_key=AES_KEY, receive_id="wwOtherCorp")
    envelope = other.encrypt(message=ADD_EVENT, timestamp="1", nonce="n")

    with pytest.raises(WeComCryptoError) as refused:
        crypto.decrypt(
            msg_signature=envelope.msg_signature, timestamp="1", nonce="n", encrypt=envelope.encrypt
        )

    assert refused.value.code is WeComErrorCode.INVALID_RECEIVER


def test_a_flipped_cipher_byte_is_refused(crypto: CallbackCrypto) -> None:
    # the attacker re-signs (knows the token) but cannot forge the AES content
    envelope = crypto.encrypt(message=ADD_EVENT, timestamp="1", nonce="n")
    raw = bytearray(base64.b64decode(envelope.encrypt))
    raw[-1] ^= 0x01
    forged = base64.b64encode(bytes(raw)).decode()
    sig = signature(token=TOKEN, timestamp="1", nonce="n", encrypt=forged)

    with pytest.raises(WeComCryptoError) as refused:
        crypto.decrypt(msg_signature=sig, timestamp="1", nonce="n", encrypt=forged)

    assert refused.value.code in (WeComErrorCode.DECRYPT_FAILED, WeComErrorCode.INVALID_RECEIVER)


def test_padding_uses_32_byte_blocks() -> None:
    assert pkcs7_pad(b"a" * 32) == b"a" * 32 + bytes([32]) * 32
    assert pkcs7_pad(b"a" * 31) == b"a" * 31 + b"\x01"
    assert pkcs7_unpad(b"a" * 20 + bytes([12]) * 12) == b"a" * 20


@pytest.mark.parametrize("tail", [bytes([0]) * 32, bytes([33]) * 32, b"\x01" * 30 + b"\x02\x03"])
def test_bad_padding_is_refused(tail: bytes) -> None:
    with pytest.raises(WeComCryptoError) as refused:
        pkcs7_unpad(b"x" * 32 + tail)

    assert refused.value.code is WeComErrorCode.DECRYPT_FAILED


def test_a_key_that_is_not_43_characters_is_refused() -> None:
    with pytest.raises(WeComCryptoError) as refused:
        aes_key("short")

    assert refused.value.code is WeComErrorCode.INVALID_AES_KEY


def test_parse_xml_reads_the_event_fields() -> None:
    fields = parse_xml(ADD_EVENT)

    assert fields["ChangeType"] == "add_external_contact"
    assert fields["WelcomeCode"] == "WELCOME-1"
    assert fields["State"] == "c-sh001"


def test_parse_xml_refuses_a_dtd() -> None:
    with pytest.raises(WeComCryptoError):
        parse_xml('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><xml><A>&a;</A></xml>')


def test_a_non_ascii_signature_is_refused_not_crashed(crypto: CallbackCrypto) -> None:
    envelope = crypto.encrypt(message=ADD_EVENT, timestamp="1", nonce="n")

    with pytest.raises(WeComCryptoError) as refused:
        crypto.decrypt(msg_signature="签名", timestamp="1", nonce="n", encrypt=envelope.encrypt)

    assert refused.value.code == WeComErrorCode.INVALID_SIGNATURE
