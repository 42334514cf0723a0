"""The dispatcher retries with backoff, dead-letters what keeps failing, reports back as events."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from siyu.bootstrap import Siyu
from siyu.clock import FixedClock
from siyu.db import transaction
from siyu.delivery import outbox
from siyu.delivery import service as delivery_service
from siyu.delivery.dispatcher import MAX_ATTEMPTS, dispatch_due
from siyu.delivery.interface import ChannelFailure, OutboundMessage, SendResult
from siyu.delivery.models import OutboxMessage
from siyu.ingest.models import Event
from tests.factories.journeys import add_member

SHANGHAI = ZoneInfo("Asia/Shanghai")


class FlakyChannel:
    name = "sandbox"

    def __init__(self, failures: int, *, permanent: bool = False) -> None:
        self.failures = failures
        self.permanent = permanent
        self.calls = 0

    def send(self, message: OutboundMessage) -> SendResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise ChannelFailure("provider timeout", permanent=self.permanent)
        return SendResult(provider_message_id="biz-42")


def _setup(siyu: Siyu, clock: FixedClock) -> int:
    with transaction(siyu.session_factory) as db:
        wang = add_member(db, name="Wang Fang", registered_at=clock.now())
        outbox.enqueue(
            db_session=db,
            now=clock.now(),
            idempotency_key="k1",
            channel="sandbox",
            member_id=wang,
            body="Hello",
        )
    return wang


def _message(siyu: Siyu) -> OutboxMessage:
    with transaction(siyu.session_factory) as db:
        return db.scalars(select(OutboxMessage)).one()


def _event_types(siyu: Siyu) -> list[str]:
    with transaction(siyu.session_factory) as db:
        return list(db.scalars(select(Event.type).order_by(Event.id)))


def test_a_failed_send_is_retried_after_backoff_and_then_sent(
    siyu: Siyu, clock: FixedClock
) -> None:
    _setup(siyu, clock)
    channel = FlakyChannel(failures=2)

    def run() -> dict[str, int]:
        return dispatch_due(
            session_factory=siyu.session_factory,
            channels={"sandbox": channel},
            now=clock.now(),
            tz=SHANGHAI,
        ).counts

    assert run() == {"failed": 1}
    assert run() == {}  # not due before the 1-minute backoff
    clock.advance(timedelta(minutes=1))
    assert run() == {"failed": 1}
    clock.advance(timedelta(minutes=1))
    assert run() == {}  # second backoff is 2 minutes
    clock.advance(timedelta(minutes=1))
    assert run() == {"sent": 1}
    assert _message(siyu).attempts == 3
    assert _event_types(siyu) == ["message_failed", "message_failed", "message_sent"]


def test_a_message_failing_every_attempt_becomes_a_dead_letter(
    siyu: Siyu, clock: FixedClock
) -> None:
    _setup(siyu, clock)
    channel = FlakyChannel(failures=99)

    for _ in range(MAX_ATTEMPTS):
        dispatch_due(
            session_factory=siyu.session_factory,
            channels={"sandbox": channel},
            now=clock.now(),
            tz=SHANGHAI,
        )
        clock.advance(timedelta(hours=1))

    message = _message(siyu)
    assert (message.status, message.attempts, channel.calls) == ("dead", 5, 5)
    assert message.reason == "dead after 5 attempt(s): provider timeout"


def test_a_permanent_failure_is_dead_at_once(siyu: Siyu, clock: FixedClock) -> None:
    _setup(siyu, clock)

    dispatch_due(
        session_factory=siyu.session_factory,
        channels={"sandbox": FlakyChannel(1, permanent=True)},
        now=clock.now(),
        tz=SHANGHAI,
    )

    assert (_message(siyu).status, _message(siyu).attempts) == ("dead", 1)


def test_a_provider_receipt_comes_back_as_an_event(siyu: Siyu, clock: FixedClock) -> None:
    wang = _setup(siyu, clock)
    dispatch_due(
        session_factory=siyu.session_factory,
        channels={"sandbox": FlakyChannel(0)},
        now=clock.now(),
        tz=SHANGHAI,
    )

    with transaction(siyu.session_factory) as db:
        matched = delivery_service.record_receipt(
            db_session=db, now=clock.now(), provider_message_id="biz-42", status="delivered"
        )

    assert matched is True
    with transaction(siyu.session_factory) as db:
        event = db.scalars(select(Event).where(Event.type == "message_delivered")).one()
        assert (event.member_id, event.properties["channel"]) == (wang, "sandbox")
