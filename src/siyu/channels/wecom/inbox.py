"""The callback intake: verify, decrypt, store durably in `wecom_inbox`, de-duplicate, ack.

Nothing else happens before the acknowledgement (WeCom waits 5 s and retries 3×): processing is
the worker's job (`processing.process_inbox`). De-duplication key: MsgId when present, otherwise
(ToUserName, Event, ChangeType, ExternalUserID or ChatId, CreateTime) plus the staff UserID and
UpdateDetail (two guides can be added by one customer in the same second).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.wecom.crypto import CallbackCrypto, parse_xml
from siyu.channels.wecom.errors import WeComCryptoError, WeComErrorCode
from siyu.channels.wecom.models import WeComInbox
from siyu.config import Settings


class WeComSettings(BaseSettings):
    """What the WeCom side needs beyond `Settings`: the customer-contact secret."""

    model_config = SettingsConfigDict(env_prefix="SIYU_WECOM_", extra="ignore")

    secret: str | None = None
    welcome_window_seconds: int = 20
    monthly_cap_per_customer: int = 31  # platform setting (days of the month); configurable
    our_monthly_budget_per_customer: int = 4  # our own, stricter budget


def callback_crypto(settings: Settings) -> CallbackCrypto:
    if not (settings.wecom_corp_id and settings.wecom_token and settings.wecom_aes_key):
        raise WeComCryptoError(
            WeComErrorCode.NOT_CONFIGURED,
            "WeCom callbacks need SIYU_WECOM_CORP_ID, SIYU_WECOM_TOKEN and SIYU_WECOM_AES_KEY",
        )
    return CallbackCrypto(
        token=settings.wecom_token,
        encoding_aes_key=settings.wecom_aes_key,
        receive_id=settings.wecom_corp_id,
    )


@dataclass(frozen=True, slots=True)
class Accepted:
    inbox_id: int | None  # None: a duplicate of a callback already stored
    duplicate: bool


def dedup_key(fields: dict[str, str]) -> str:
    if fields.get("MsgId"):
        return f"msg:{fields['MsgId']}"
    subject = fields.get("ExternalUserID") or fields.get("ChatId") or fields.get("TagId") or ""
    parts = [
        fields.get("ToUserName", ""),
        fields.get("Event", ""),
        fields.get("ChangeType", ""),
        subject,
        fields.get("CreateTime", ""),
        fields.get("UserID", ""),
        fields.get("UpdateDetail", ""),
    ]
    return "|".join(parts)[:255]


def open_callback(
    *, crypto: CallbackCrypto, msg_signature: str, timestamp: str, nonce: str, body: bytes
) -> dict[str, str]:
    """Verify and decrypt one POSTed callback; its fields. Raises WeComCryptoError."""
    envelope = parse_xml(body)
    if "Encrypt" not in envelope:
        raise WeComCryptoError(WeComErrorCode.MALFORMED_MESSAGE, "callback has no <Encrypt>")
    plain = crypto.decrypt(
        msg_signature=msg_signature, timestamp=timestamp, nonce=nonce, encrypt=envelope["Encrypt"]
    )
    return parse_xml(plain)


def accept_callback(
    *,
    session_factory: sessionmaker[Session],
    crypto: CallbackCrypto,
    msg_signature: str,
    timestamp: str,
    nonce: str,
    body: bytes,
    now: datetime,
) -> Accepted:
    """Verify and decrypt one POSTed callback and store it once; raises WeComCryptoError."""
    fields = open_callback(
        crypto=crypto, msg_signature=msg_signature, timestamp=timestamp, nonce=nonce, body=body
    )
    row = WeComInbox(
        dedup_key=dedup_key(fields),
        event=fields.get("Event") or fields.get("MsgType", "unknown"),
        change_type=fields.get("ChangeType"),
        payload=fields,
        received_at=now,
    )
    with session_factory() as session:
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()  # WeCom retried a callback we already hold
            return Accepted(inbox_id=None, duplicate=True)
        return Accepted(inbox_id=row.id, duplicate=False)
