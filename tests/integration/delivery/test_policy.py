"""Delivery policy before anything leaves: consent, unsubscribe, caps, quiet hours, duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from siyu.bootstrap import Siyu
from siyu.clock import FixedClock
from siyu.db import transaction
from siyu.delivery import outbox
from siyu.delivery import service as delivery_service
from siyu.delivery.dispatcher import dispatch_due
from siyu.delivery.interface import OutboundMessage, SendResult
from siyu.delivery.models import DeliveryDecision, OutboxMessage, QuietRule
from tests.factories.journeys import add_member

SHANGHAI = ZoneInfo("Asia/Shanghai")
CHANNELS = ("sandbox", "sms", "email")


class RecordingChannel:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        return SendResult(provider_message_id=f"{self.name}-{len(self.sent)}")


@pytest.fixture
def channels() -> dict[str, RecordingChannel]:
    return {name: RecordingChannel(name) for name in CHANNELS}


@pytest.fixture
def wang(siyu: Siyu, clock: FixedClock) -> int:
    """Wang Fang, member of Demo Tea at SH001, opted in to SMS and email."""
    with transaction(siyu.session_factory) as db:
        member_id = add_member(
            db,
            name="Wang Fang",
            registered_at=clock.now(),
            phone="13800138000",
            email="wang.fang@example.cn",
        )
        for channel in ("sms", "email"):
            delivery_service.record_consent(
                db_session=db,
                now=clock.now(),
                member_id=member_id,
                channel=channel,
                granted=True,
                source="pos-signup",
            )
    return member_id


def _enqueue(
    siyu: Siyu, now: datetime, member_id: int, channel: str, key: str, body: str = "Hello"
) -> None:
    with transaction(siyu.session_factory) as db:
        outbox.enqueue(
            db_session=db,
            now=now,
            idempotency_key=key,
            channel=channel,
            member_id=member_id,
            body=body,
        )


def _dispatch(siyu: Siyu, now: datetime, channels: dict[str, RecordingChannel]) -> dict[str, int]:
    report = dispatch_due(
        session_factory=siyu.session_factory, channels=channels, now=now, tz=SHANGHAI
    )
    return report.counts


def _decisions(siyu: Siyu) -> list[tuple[str, str, str]]:
    with transaction(siyu.session_factory) as db:
        rows = db.execute(
            select(
                DeliveryDecision.channel, DeliveryDecision.decision, DeliveryDecision.reason
            ).order_by(DeliveryDecision.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.mark.parametrize("channel", CHANNELS)
def test_unsubscribe_from_everything_suppresses_every_channel(
    siyu: Siyu, clock: FixedClock, wang: int, channels: dict[str, RecordingChannel], channel: str
) -> None:
    # given Wang Fang unsubscribed from all channels
    with transaction(siyu.session_factory) as db:
        delivery_service.record_consent(
            db_session=db,
            now=clock.now(),
            member_id=wang,
            channel="*",
            granted=False,
            source="sms-reply-TD",
        )
    _enqueue(siyu, clock.now(), wang, channel, "k1")

    # when the dispatcher runs
    counts = _dispatch(siyu, clock.now(), channels)

    # then nothing left on any channel and the reason is recorded
    assert counts == {"suppressed": 1}
    assert channels[channel].sent == []
    assert _decisions(siyu) == [(channel, "suppressed", "unsubscribed from all channels")]


def test_unsubscribe_from_sms_still_allows_email(
    siyu: Siyu, clock: FixedClock, wang: int, channels: dict[str, RecordingChannel]
) -> None:
    with transaction(siyu.session_factory) as db:
        delivery_service.record_consent(
            db_session=db,
            now=clock.now(),
            member_id=wang,
            channel="sms",
            granted=False,
            source="sms-reply-TD",
        )
    _enqueue(siyu, clock.now(), wang, "sms", "k1")
    _enqueue(siyu, clock.now(), wang, "email", "k2")

    counts = _dispatch(siyu, clock.now(), channels)

    assert counts == {"suppressed": 1, "sent": 1}
    assert [m.recipient for m in channels["email"].sent] == ["wang.fang@example.cn"]
    assert _decisions(siyu)[0] == ("sms", "suppressed", "unsubscribed from sms")


def test_sms_without_consent_on_record_is_suppressed(
    siyu: Siyu, clock: FixedClock, channels: dict[str, RecordingChannel]
) -> None:
    with transaction(siyu.session_factory) as db:
        li_na = add_member(db, name="Li Na", registered_at=clock.now(), phone="13900139000")
    _enqueue(siyu, clock.now(), li_na, "sms", "k1")

    assert _dispatch(siyu, clock.now(), channels) == {"suppressed": 1}
    assert _decisions(siyu) == [("sms", "suppressed", "no consent on record for sms")]


def test_frequency_cap_per_channel_suppresses_the_message_over_the_cap(
    siyu: Siyu, clock: FixedClock, wang: int, channels: dict[str, RecordingChannel]
) -> None:
    # given an SMS cap of 2 per rolling 30 days (data, not code)
    with transaction(siyu.session_factory) as db:
        delivery_service.set_frequency_cap(
            db_session=db, channel="sms", max_messages=2, window_hours=720, label="SMS 2 a month"
        )
    for index in range(3):
        _enqueue(siyu, clock.now(), wang, "sms", f"k{index}", body=f"Offer {index}")

    counts = _dispatch(siyu, clock.now(), channels)

    assert counts == {"sent": 2, "suppressed": 1}
    assert _decisions(siyu)[-1] == ("sms", "suppressed", "frequency cap reached: SMS 2 a month")


def test_cross_channel_cap_counts_every_channel_together(
    siyu: Siyu, clock: FixedClock, wang: int, channels: dict[str, RecordingChannel]
) -> None:
    with transaction(siyu.session_factory) as db:
        delivery_service.set_frequency_cap(
            db_session=db, channel="*", max_messages=2, window_hours=24
        )
    _enqueue(siyu, clock.now(), wang, "sms", "k1", body="a")
    _enqueue(siyu, clock.now(), wang, "email", "k2", body="b")
    _enqueue(siyu, clock.now(), wang, "sandbox", "k3", body="c")

    counts = _dispatch(siyu, clock.now(), channels)

    assert counts == {"sent": 2, "suppressed": 1}
    assert _decisions(siyu)[-1] == (
        "sandbox",
        "suppressed",
        "frequency cap reached: 2 per 24h on *",
    )


def test_cap_window_rolls_so_next_month_sends_again(
    siyu: Siyu, clock: FixedClock, wang: int, channels: dict[str, RecordingChannel]
) -> None:
    with transaction(siyu.session_factory) as db:
        delivery_service.set_frequency_cap(
            db_session=db, channel="sms", max_messages=1, window_hours=720
        )
    _enqueue(siyu, clock.now(), wang, "sms", "k1", body="June offer")
    _dispatch(siyu, clock.now(), channels)
    later = clock.now() + timedelta(days=31)
    _enqueue(siyu, later, wang, "sms", "k2", body="July offer")

    assert _dispatch(siyu, later, channels) == {"sent": 1}


def test_quiet_hours_hold_rule_sends_when_quiet_hours_end(
    siyu: Siyu, wang: int, channels: dict[str, RecordingChannel]
) -> None:
    # given SMS quiet hours 21:00–09:00 with the hold rule, and a message made at 23:30 Shanghai
    night = datetime(2026, 6, 18, 23, 30, tzinfo=SHANGHAI)
    with transaction(siyu.session_factory) as db:
        delivery_service.set_quiet_hours(
            db_session=db, channel="sms", start="21:00", end="09:00", rule=QuietRule.HOLD
        )
    _enqueue(siyu, night, wang, "sms", "k1")

    # when the dispatcher runs at night, then at 09:00 the next morning
    assert _dispatch(siyu, night, channels) == {"held": 1}
    assert _dispatch(siyu, datetime(2026, 6, 19, 8, 59, tzinfo=SHANGHAI), channels) == {}
    assert _dispatch(siyu, datetime(2026, 6, 19, 9, 0, tzinfo=SHANGHAI), channels) == {"sent": 1}

    # then it was held (with the instant) and sent once
    with transaction(siyu.session_factory) as db:
        message = db.scalars(select(OutboxMessage)).one()
        assert message.sent_at == datetime(2026, 6, 19, 1, 0, tzinfo=UTC)
    assert _decisions(siyu)[0] == ("sms", "held", "quiet hours 21:00-09:00 (sms): held")


def test_quiet_hours_drop_rule_suppresses(
    siyu: Siyu, wang: int, channels: dict[str, RecordingChannel]
) -> None:
    night = datetime(2026, 6, 18, 22, 0, tzinfo=SHANGHAI)
    with transaction(siyu.session_factory) as db:
        delivery_service.set_quiet_hours(
            db_session=db, channel="*", start="21:00", end="09:00", rule=QuietRule.DROP
        )
    _enqueue(siyu, night, wang, "email", "k1")

    assert _dispatch(siyu, night, channels) == {"suppressed": 1}
    assert channels["email"].sent == []


def test_same_content_to_same_member_within_a_day_is_a_duplicate(
    siyu: Siyu, clock: FixedClock, wang: int, channels: dict[str, RecordingChannel]
) -> None:
    _enqueue(siyu, clock.now(), wang, "email", "k1", body="Member day: 2 cups 20% off")
    _enqueue(siyu, clock.now(), wang, "email", "k2", body="Member day: 2 cups 20% off")

    assert _dispatch(siyu, clock.now(), channels) == {"sent": 1, "suppressed": 1}
    assert _decisions(siyu)[-1][2].startswith("duplicate of message")


def test_member_without_an_address_is_suppressed_with_the_reason(
    siyu: Siyu, clock: FixedClock, channels: dict[str, RecordingChannel]
) -> None:
    with transaction(siyu.session_factory) as db:
        zhao = add_member(db, name="Zhao Lei", registered_at=clock.now())
        delivery_service.record_consent(
            db_session=db,
            now=clock.now(),
            member_id=zhao,
            channel="email",
            granted=True,
            source="mini-program",
        )
    _enqueue(siyu, clock.now(), zhao, "email", "k1")

    assert _dispatch(siyu, clock.now(), channels) == {"suppressed": 1}
    assert _decisions(siyu) == [("email", "suppressed", "no email address for the member")]
