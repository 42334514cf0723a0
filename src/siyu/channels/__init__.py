"""Channels: adapters that deliver messages (sandbox, SMS, email, webhook; WeCom via staff tasks).

`build_channels` composes the channels whose settings are present; the sandbox always is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from siyu.channels.base import BaseChannel, ChannelSettings

if TYPE_CHECKING:
    from siyu.bootstrap import Siyu
    from siyu.journeys.runtime import JourneyRuntime

log = logging.getLogger(__name__)


def build_channels(
    settings: ChannelSettings, *, utc_now: Callable[[], datetime]
) -> dict[str, BaseChannel]:
    from siyu.channels.email import EmailChannel
    from siyu.channels.sandbox import SandboxChannel
    from siyu.channels.sms import AliyunSms, SmsChannel
    from siyu.channels.webhook import WebhookChannel
    from siyu.channels.wecom.subscribe_channel import miniprogram_channels

    channels: dict[str, BaseChannel] = {"sandbox": SandboxChannel()}
    if settings.smtp_host:
        channels["email"] = EmailChannel(settings)
    if settings.sms_access_key_id and settings.sms_access_key_secret and settings.sms_sign_name:
        channels["sms"] = SmsChannel(AliyunSms(settings, utc_now=utc_now))
    if settings.webhook_secret:
        # Real time, not the injected clock: the signature timestamp protects the transport,
        # and a receiver checks it against its own wall clock.
        channels["webhook"] = WebhookChannel(settings, unix_now=lambda: int(time.time()))
    channels.update(miniprogram_channels())  # mini-program subscription messages (WeCom issue)
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
        refresh_segments=_segment_refresher(siyu),
    )


def _segment_refresher(siyu: Siyu) -> Callable[[Sequence[str], datetime], object] | None:
    """Sync the warehouse, then snapshot the watched segments that are due (segments domain).

    The warehouse file is opened per pass and closed again, so a long-running worker does not
    hold DuckDB's single-process lock away from the console and the CLI; when another process
    holds it, this pass takes no snapshot and a later pass does.
    """
    try:
        from siyu.segments.refresh import refresh_segment
    except ImportError:
        return None
    from siyu.warehouse.duckdb import DuckDBWarehouse, WarehouseBusyError
    from siyu.warehouse.sync import sync_all

    def refresh(names: Sequence[str], now: datetime) -> int:
        try:
            warehouse = DuckDBWarehouse.from_url(siyu.settings.resolved_warehouse_url)
            warehouse.connection  # noqa: B018 — opening it is what may raise WarehouseBusyError
        except WarehouseBusyError:
            log.warning("warehouse busy: segment snapshots postponed to a later pass")
            return 0
        try:
            tz = siyu.settings.tz
            sync_all(session_factory=siyu.session_factory, warehouse=warehouse, tz=tz)
            for name in names:
                refresh_segment(
                    session_factory=siyu.session_factory,
                    warehouse=warehouse,
                    name=name,
                    now=now,
                    timezone=tz,
                )
        finally:
            warehouse.close()
        return len(names)

    return refresh
