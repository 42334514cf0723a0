"""A batch of journey messages on an addressed channel gets each member's own address (the
engine looks the batch's addresses up together, not one query per message)."""

from __future__ import annotations

from sqlalchemy import select

from siyu.bootstrap import Siyu
from siyu.channels.sandbox import SandboxChannel
from siyu.clock import FixedClock
from siyu.db import transaction
from siyu.delivery.models import OutboxMessage
from siyu.journeys.worker import run_once
from tests.factories.journeys import add_event, add_member, apply_journey, runtime_for

WELCOME_EMAIL = """
name: welcome-email
trigger: {type: event, event: member_registered}
steps:
  - {id: welcome, type: action, action: send_message,
     params: {channel: email, subject: "Welcome to Demo Tea", body: "Hello {{ member.name }}"}}
"""


def test_each_message_of_a_batch_is_addressed_to_its_own_member(
    siyu: Siyu, clock: FixedClock
) -> None:
    # given Wang Fang and Li Na with e-mail addresses and Zhao Min without one
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, WELCOME_EMAIL)
    people = {"Wang Fang": "wang.fang@example.cn", "Li Na": "li.na@example.cn", "Zhao Min": None}
    ids: dict[str, int] = {}
    with transaction(siyu.session_factory) as db:
        for name, email in people.items():
            ids[name] = add_member(db, name=name, registered_at=clock.now(), email=email)
            add_event(db, member_id=ids[name], type="member_registered", at=clock.now())
    # when one worker pass enrolls them and runs their welcome steps as one batch
    run_once(runtime=runtime, channels={"sandbox": SandboxChannel()}, now=clock.now(), hooks=())
    # then every message carries its member's address, and none where she has no e-mail
    with transaction(siyu.session_factory) as db:
        rows = db.execute(select(OutboxMessage.member_id, OutboxMessage.recipient)).all()
    assert sorted(rows) == sorted(
        [
            (ids["Wang Fang"], "wang.fang@example.cn"),
            (ids["Li Na"], "li.na@example.cn"),
            (ids["Zhao Min"], None),
        ]
    )
