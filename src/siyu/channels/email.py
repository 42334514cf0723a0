"""Email over SMTP (STARTTLS and login when configured); Message-ID carries the idempotency key."""

from __future__ import annotations

import hashlib
import smtplib
from email.message import EmailMessage

from siyu.channels.base import (
    BaseChannel,
    ChannelFailure,
    ChannelSettings,
    OutboundMessage,
    SendResult,
)


class EmailChannel(BaseChannel):
    name = "email"

    def __init__(self, settings: ChannelSettings) -> None:
        if not settings.smtp_host:
            raise ValueError("SIYU_SMTP_HOST is not set")
        self.settings = settings

    def send(self, message: OutboundMessage) -> SendResult:
        mail = EmailMessage()
        mail["From"] = self.settings.smtp_from
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        # A stable Message-ID: a re-send after a crash is recognisable as the same mail.
        key = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
        mail["Message-ID"] = f"<{key}@siyu.local>"
        mail.set_content(message.body)
        try:
            with smtplib.SMTP(
                self.settings.smtp_host or "",
                self.settings.smtp_port,
                timeout=self.settings.http_timeout_seconds,
            ) as smtp:
                if self.settings.smtp_starttls:
                    smtp.starttls()
                if self.settings.smtp_user:
                    smtp.login(self.settings.smtp_user, self.settings.smtp_password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as error:
            raise ChannelFailure(
                f"recipient refused: {error.recipients}", permanent=True
            ) from error
        except (smtplib.SMTPException, OSError) as error:
            raise ChannelFailure(f"smtp: {error}") from error
        return SendResult(provider_message_id=str(mail["Message-ID"]))
