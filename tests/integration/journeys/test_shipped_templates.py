"""The shipped templates run as the issue describes them (holdout set to 0 so the personas are
all treated): Wumart's win-back branches on spend and tags who never came back; the random
split sends a member down the same path every time; a journey can remove a tag it added."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from siyu.bootstrap import Siyu
from siyu.channels.sandbox import SandboxChannel
from siyu.clock import FixedClock
from siyu.db import transaction
from siyu.delivery.models import OutboxMessage
from siyu.journeys import templates
from siyu.journeys.assignment import choose_path
from siyu.journeys.definition import SplitPath
from siyu.journeys.models import StepRun
from siyu.journeys.runtime import JourneyRuntime
from siyu.journeys.service import parse_definition
from siyu.journeys.worker import run_once
from siyu.tags.models import MemberTag, Tag
from tests.factories.journeys import add_event, add_member, add_order, apply_journey, runtime_for


def _run_days(runtime: JourneyRuntime, clock: FixedClock, days: int) -> None:
    for _ in range(days * 4):
        run_once(runtime=runtime, channels={"sandbox": SandboxChannel()}, now=clock.now(), hooks=())
        clock.advance(timedelta(hours=6))


def _messages(siyu: Siyu) -> dict[int | None, list[str]]:
    found: dict[int | None, list[str]] = {}
    with transaction(siyu.session_factory) as db:
        for member_id, body in db.execute(
            select(OutboxMessage.member_id, OutboxMessage.body).order_by(OutboxMessage.id)
        ):
            found.setdefault(member_id, []).append(body)
    return found


def _tags(siyu: Siyu, member_id: int) -> list[str]:
    with transaction(siyu.session_factory) as db:
        return list(
            db.scalars(
                select(Tag.name)
                .join(MemberTag, MemberTag.tag_id == Tag.id)
                .where(MemberTag.member_id == member_id)
            )
        )


@pytest.mark.parametrize("name", templates.names())
def test_every_shipped_template_is_a_valid_definition(name: str, siyu: Siyu) -> None:
    definition = parse_definition(templates.read(name), actions=runtime_for(siyu).actions)

    assert definition.name == name


def test_win_back_offers_by_spend_layer_and_tags_who_did_not_return(
    siyu: Siyu, clock: FixedClock
) -> None:
    # given two members silent for 4+ months: Wang Fang spent ¥620 last year, Li Na ¥80
    runtime = runtime_for(siyu)
    apply_journey(
        siyu,
        runtime,
        templates.read("win-back").replace("holdout_percent: 10", "holdout_percent: 0"),
    )
    with transaction(siyu.session_factory) as db:
        long_ago = clock.now() - timedelta(days=400)
        wang = add_member(db, name="Wang Fang", registered_at=long_ago)
        li = add_member(db, name="Li Na", registered_at=long_ago)
        add_order(db, member_id=wang, order_id="SH001-0100", at=clock.now() - timedelta(days=130),
                  amount="620.00")  # fmt: skip
        add_order(db, member_id=li, order_id="SH001-0101", at=clock.now() - timedelta(days=150),
                  amount="80.00")  # fmt: skip

    # when the Monday 22 June run happens and two more weeks pass without an order
    _run_days(runtime, clock, 20)

    # then each got her layer's offer once, and both are tagged as not having come back
    assert _messages(siyu) == {
        wang: ["We miss you, Wang Fang: spend 100, save 20 this week."],
        li: ["We miss you, Li Na: free delivery on your next order."],
    }
    assert _tags(siyu, wang) == ["win-back-no-response"]
    assert _tags(siyu, li) == ["win-back-no-response"]


SPLIT_AND_UNTAG = """
name: tea-or-coffee
trigger: {type: event, event: member_registered}
steps:
  - {id: mark, type: action, action: add_tag, params: {tag: "campaign:tea-or-coffee"}}
  - id: ab
    type: split
    paths: [{weight: 1, next: tea}, {weight: 1, next: coffee}]
  - {id: tea, type: action, action: send_message, params: {body: "Tea"}, next: done}
  - {id: coffee, type: action, action: send_message, params: {body: "Coffee"}, next: done}
  - {id: done, type: action, action: remove_tag, params: {tag: "campaign:tea-or-coffee"}}
"""


def test_split_sends_each_member_down_her_stable_path_and_the_tag_is_removed_after(
    siyu: Siyu, clock: FixedClock
) -> None:
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, SPLIT_AND_UNTAG)
    with transaction(siyu.session_factory) as db:
        members = [add_member(db, name=f"Member {i}", registered_at=clock.now()) for i in range(8)]
        for member_id in members:
            add_event(db, member_id=member_id, type="member_registered", at=clock.now())

    _run_days(runtime, clock, 1)

    paths = [SplitPath(weight=1, next="tea"), SplitPath(weight=1, next="coffee")]
    expected = {
        m: [choose_path(journey="tea-or-coffee", step_id="ab", member_id=m, paths=paths).next]
        for m in members
    }
    assert _messages(siyu) == {m: [path[0].capitalize()] for m, path in expected.items()}
    assert all(_tags(siyu, m) == [] for m in members)
    with transaction(siyu.session_factory) as db:
        outcomes = set(db.scalars(select(StepRun.outcome).where(StepRun.step_id == "mark")))
    assert outcomes == {"added campaign:tea-or-coffee"}
