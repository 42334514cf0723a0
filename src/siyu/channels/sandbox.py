"""The sandbox channel: the message is kept in the outbox (shown in the console), nothing leaves.

It is the demo default and what a brand uses to rehearse a journey before switching a step to
SMS or email.
"""

from __future__ import annotations

from siyu.channels.base import BaseChannel, OutboundMessage, SendResult


class SandboxChannel(BaseChannel):
    name = "sandbox"

    def send(self, message: OutboundMessage) -> SendResult:
        return SendResult(provider_message_id=f"sandbox:{message.idempotency_key}")
