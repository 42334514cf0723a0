"""WeCom callback crypto (企业微信回调加解密), exactly as the official protocol specifies.

- signature = SHA-1 hex of the sorted concatenation of (token, timestamp, nonce, encrypt);
- AES-256-CBC, key = Base64-decode(EncodingAESKey + "="), IV = the key's first 16 bytes;
- PKCS#7 padding to a multiple of **32** bytes (not AES's 16), so padding values run 1..32;
- plaintext = 16 random bytes | 4-byte big-endian message length | message | receive id
  (the corp id for customer-contact callbacks).

`verify_url` answers the GET handshake, `decrypt` opens a POSTed <Encrypt>, `encrypt` builds a
signed envelope (for passive replies, the fake WeCom server and tests).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass
from xml.etree import ElementTree

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from siyu.channels.wecom.errors import WeComCryptoError, WeComErrorCode

BLOCK_SIZE = 32
RANDOM_PREFIX = 16


def signature(*, token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """SHA-1 over the four values sorted as strings and concatenated."""
    joined = "".join(sorted([token, timestamp, nonce, encrypt]))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()  # noqa: S324 - the protocol mandates SHA-1


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key behind the 43-character EncodingAESKey."""
    if len(encoding_aes_key) != 43:
        raise WeComCryptoError(
            WeComErrorCode.INVALID_AES_KEY, "EncodingAESKey must be 43 characters"
        )
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as error:
        raise WeComCryptoError(
            WeComErrorCode.INVALID_AES_KEY, f"EncodingAESKey is not Base64: {error}"
        ) from error
    if len(key) != 32:
        raise WeComCryptoError(
            WeComErrorCode.INVALID_AES_KEY, "EncodingAESKey must decode to 32 bytes"
        )
    return key


def pkcs7_pad(data: bytes) -> bytes:
    amount = BLOCK_SIZE - len(data) % BLOCK_SIZE
    return data + bytes([amount]) * amount


def pkcs7_unpad(data: bytes) -> bytes:
    if not data:
        raise WeComCryptoError(WeComErrorCode.DECRYPT_FAILED, "empty plaintext")
    amount = data[-1]
    if not 1 <= amount <= BLOCK_SIZE or data[-amount:] != bytes([amount]) * amount:
        raise WeComCryptoError(WeComErrorCode.DECRYPT_FAILED, "bad PKCS#7 padding")
    return data[:-amount]


@dataclass(frozen=True, slots=True)
class Envelope:
    """What WeCom POSTs (Encrypt) and signs (msg_signature, timestamp, nonce)."""

    encrypt: str
    msg_signature: str
    timestamp: str
    nonce: str

    def to_xml(self) -> str:
        return (
            f"<xml><Encrypt><![CDATA[{self.encrypt}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{self.msg_signature}]]></MsgSignature>"
            f"<TimeStamp>{self.timestamp}</TimeStamp><Nonce><![CDATA[{self.nonce}]]></Nonce></xml>"
        )


class CallbackCrypto:
    """One configured (token, EncodingAESKey, receive id): WXBizMsgCrypt's three operations."""

    def __init__(self, *, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self._token = token
        self._key = aes_key(encoding_aes_key)
        self._receive_id = receive_id

    def verify_url(self, *, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The GET handshake: check the signature and return the decrypted echostr."""
        return self.decrypt(
            msg_signature=msg_signature, timestamp=timestamp, nonce=nonce, encrypt=echostr
        )

    def decrypt(self, *, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        expected = signature(token=self._token, timestamp=timestamp, nonce=nonce, encrypt=encrypt)
        # compared as bytes: compare_digest refuses non-ASCII str, and a forged
        # signature or receive id may be anything
        if not hmac.compare_digest(expected.encode(), msg_signature.lower().encode("utf-8")):
            raise WeComCryptoError(WeComErrorCode.INVALID_SIGNATURE, "msg_signature does not match")
        plain = pkcs7_unpad(self._aes(encrypt_mode=False, data=_b64decode(encrypt)))
        if len(plain) < RANDOM_PREFIX + 4:
            raise WeComCryptoError(
                WeComErrorCode.DECRYPT_FAILED, "plaintext shorter than its header"
            )
        (length,) = struct.unpack(">I", plain[RANDOM_PREFIX : RANDOM_PREFIX + 4])
        body_end = RANDOM_PREFIX + 4 + length
        if body_end > len(plain):
            raise WeComCryptoError(
                WeComErrorCode.DECRYPT_FAILED, "message length exceeds plaintext"
            )
        receive_id = plain[body_end:]
        if not hmac.compare_digest(receive_id, self._receive_id.encode("utf-8")):
            raise WeComCryptoError(
                WeComErrorCode.INVALID_RECEIVER,
                f"receive id {receive_id.decode('utf-8', errors='replace')!r} is not ours",
            )
        try:
            return plain[RANDOM_PREFIX + 4 : body_end].decode("utf-8")
        except UnicodeDecodeError as error:
            raise WeComCryptoError(WeComErrorCode.DECRYPT_FAILED, "message is not UTF-8") from error

    def encrypt(
        self, *, message: str, timestamp: str, nonce: str, random_prefix: bytes | None = None
    ) -> Envelope:
        prefix = random_prefix if random_prefix is not None else os.urandom(RANDOM_PREFIX)
        body = message.encode("utf-8")
        plain = prefix + struct.pack(">I", len(body)) + body + self._receive_id.encode("utf-8")
        cipher_text = base64.b64encode(self._aes(encrypt_mode=True, data=pkcs7_pad(plain))).decode(
            "ascii"
        )
        sig = signature(token=self._token, timestamp=timestamp, nonce=nonce, encrypt=cipher_text)
        return Envelope(encrypt=cipher_text, msg_signature=sig, timestamp=timestamp, nonce=nonce)

    def _aes(self, *, encrypt_mode: bool, data: bytes) -> bytes:
        if not encrypt_mode and (not data or len(data) % 16):
            raise WeComCryptoError(
                WeComErrorCode.DECRYPT_FAILED, "cipher text is not whole AES blocks"
            )
        cipher = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))
        worker = cipher.encryptor() if encrypt_mode else cipher.decryptor()
        return worker.update(data) + worker.finalize()


def _b64decode(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as error:
        raise WeComCryptoError(WeComErrorCode.DECRYPT_FAILED, "Encrypt is not Base64") from error


def parse_xml(text: str | bytes) -> dict[str, str]:
    """Flat <xml> → {tag: text}; nested elements (MemChangeList) join their children with ','."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        # WeCom never sends a DTD; refusing one rules out entity-expansion attacks.
        raise WeComCryptoError(
            WeComErrorCode.MALFORMED_MESSAGE, "callback XML must not declare a DTD"
        )
    try:
        root = ElementTree.fromstring(raw)  # noqa: S314 - DTDs refused above
    except ElementTree.ParseError as error:
        raise WeComCryptoError(
            WeComErrorCode.MALFORMED_MESSAGE, f"callback is not XML: {error}"
        ) from error
    fields: dict[str, str] = {}
    for child in root:
        if len(child):
            fields[child.tag] = ",".join((item.text or "").strip() for item in child)
        else:
            fields[child.tag] = (child.text or "").strip()
    return fields
