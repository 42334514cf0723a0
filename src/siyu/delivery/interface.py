"""What the dispatcher hands a channel and what it expects back (channels implement this)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class OutboundMessage:
    idempotency_key: str
    channel: str
    recipient: str
    subject: str
    body: str
    payload: dict[str, object] = field(default_factory=dict)
    member_id: int | None = None


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str


class ChannelFailure(Exception):
    """A send that did not go through; `permanent` failures are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    name: str

    def send(self, message: OutboundMessage) -> SendResult: ...
