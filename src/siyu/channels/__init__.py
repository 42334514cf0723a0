"""Channels: adapters that deliver messages (sandbox, SMS, email, webhook; WeCom via staff tasks).

`build_channels` composes the channels whose settings are present; the sandbox always is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from siyu.channels.base import BaseChannel, ChannelSettings

if TYPE_CHECKING:
    from siyu.bootstrap import Siyu
    from siyu.journeys.runtime import JourneyRuntime


def build_channels(
    settings: ChannelSettings, *, utc_now: Callable[[], datetime]
) -> dict[str, BaseChannel]:
    from siyu.channels.email import EmailChannel
    from siyu.channels.sandbox import SandboxChannel
    from siyu.channels.sms import AliyunSms, SmsChannel
    from siyu.channels.webhook import WebhookChannel

    channels: dict[str, BaseChannel] = {"sandbox": SandboxChannel()}
    if settings.smtp_host:
        channels["email"] = EmailChannel(settings)
    if settings.sms_access_key_id and settings.sms_access_key_secret and settings.sms_sign_name:
        channels["sms"] = SmsChannel(AliyunSms(settings, utc_now=utc_now))
    if settings.webhook_secret:
        # Real time, not the injected clock: the signature timestamp protects the transport,
        # and a receiver checks it against its own wall clock.
        channels["webhook"] = WebhookChannel(settings, unix_now=lambda: int(time.time()))
    return channels


def journey_runtime(siyu: Siyu) -> JourneyRuntime:
    """Compose the journey engine for a process: actions with the sandboxed template renderer."""
    from siyu.channels.base import SandboxedRenderer
    from siyu.journeys.actions import default_registry
    from siyu.journeys.runtime import JourneyRuntime
    from siyu.model_registry import load_all_models

    load_all_models()  # journeys/outbox rows reference members: the ORM needs every table known
    return JourneyRuntime(
        session_factory=siyu.session_factory,
        clock=siyu.clock,
        tz=siyu.settings.tz,
        actions=default_registry(renderer=SandboxedRenderer()),
    )
