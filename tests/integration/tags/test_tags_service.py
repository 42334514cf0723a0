"""Tags: groups, manual tagging with audit, exclusive groups, rule tags from the segment DSL."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from siyu.audit.models import AuditEntry
from siyu.bootstrap import Siyu
from siyu.clock import FixedClock
from siyu.db import transaction
from siyu.tags import service as tags
from siyu.tags.errors import TagError, TagErrorCode
from tests.factories import operational as op

SHANGHAI = ZoneInfo("Asia/Shanghai")
OPERATOR = "operator:hq-anna"
GUIDE = "guide:xiao-li"


def members(siyu: Siyu, *names: str) -> list[int]:
    with transaction(siyu.session_factory) as session:
        return [op.member(session, name=name).id for name in names]


def audit_actions(siyu: Siyu) -> list[tuple[str, str, str | None]]:
    with transaction(siyu.session_factory) as session:
        rows = session.execute(
            sa.select(AuditEntry.actor, AuditEntry.action, AuditEntry.entity_id).order_by(
                AuditEntry.id
            )
        ).all()
        return [tuple(row) for row in rows]  # type: ignore[misc]


def warehouse_tags(siyu: Siyu) -> set[tuple[int, str]]:
    return {(int(m), str(t)) for m, t in siyu.warehouse.query("SELECT * FROM member_tags")}


def setup_groups(siyu: Siyu, clock: FixedClock) -> None:
    common = {"session_factory": siyu.session_factory, "clock": clock, "actor": OPERATOR}
    tags.create_group(**common, name="skin", exclusive=True)
    tags.create_group(**common, name="偏好", exclusive=False)
    for tag in ("skin:dry", "skin:oily", "偏好:家居", "偏好:茶"):
        tags.define_tag(**common, tag=tag)


def test_a_guide_tags_wang_fang_and_the_audit_names_the_guide(
    siyu: Siyu, clock: FixedClock
) -> None:
    # given
    setup_groups(siyu, clock)
    (wang,) = members(siyu, "Wang Fang")
    # when
    change = tags.tag_member(
        session_factory=siyu.session_factory,
        clock=clock,
        member_id=wang,
        tag="偏好:茶",
        actor=GUIDE,
    )
    # then
    assert (change.added, change.removed) == (["偏好:茶"], [])
    views = tags.member_tags(session_factory=siyu.session_factory, member_id=wang)
    assert [(v.tag, v.source, v.tagged_by, v.tagged_at) for v in views] == [
        ("偏好:茶", "manual", GUIDE, clock.now())
    ]
    assert audit_actions(siyu)[-1] == (GUIDE, "tag.add", str(wang))


def test_tagging_twice_changes_nothing_and_audits_once(siyu: Siyu, clock: FixedClock) -> None:
    setup_groups(siyu, clock)
    (wang,) = members(siyu, "Wang Fang")
    args = {"session_factory": siyu.session_factory, "clock": clock, "member_id": wang}
    tags.tag_member(**args, tag="偏好:茶", actor=GUIDE)
    again = tags.tag_member(**args, tag="偏好:茶", actor=GUIDE)
    assert (again.added, again.removed) == ([], [])
    assert [a for a in audit_actions(siyu) if a[1] == "tag.add"] == [(GUIDE, "tag.add", str(wang))]


def test_a_tag_of_an_exclusive_group_replaces_the_other_tag_of_that_group(
    siyu: Siyu, clock: FixedClock
) -> None:
    setup_groups(siyu, clock)
    (wang,) = members(siyu, "Wang Fang")
    args = {"session_factory": siyu.session_factory, "clock": clock, "member_id": wang}
    tags.tag_member(**args, tag="skin:dry", actor=GUIDE)
    tags.tag_member(**args, tag="偏好:家居", actor=GUIDE)
    # when
    change = tags.tag_member(**args, tag="skin:oily", actor=OPERATOR)
    # then
    assert (change.added, change.removed) == (["skin:oily"], ["skin:dry"])
    held = tags.member_tags(session_factory=siyu.session_factory, member_id=wang)
    assert {v.tag for v in held} == {"偏好:家居", "skin:oily"}


def test_multi_valued_group_keeps_every_tag(siyu: Siyu, clock: FixedClock) -> None:
    setup_groups(siyu, clock)
    (wang,) = members(siyu, "Wang Fang")
    args = {"session_factory": siyu.session_factory, "clock": clock, "member_id": wang}
    tags.tag_member(**args, tag="偏好:家居", actor=GUIDE)
    tags.tag_member(**args, tag="偏好:茶", actor=GUIDE)
    held = tags.member_tags(session_factory=siyu.session_factory, member_id=wang)
    assert {v.tag for v in held} == {"偏好:家居", "偏好:茶"}


def test_untag_removes_audits_and_reaches_the_warehouse(siyu: Siyu, clock: FixedClock) -> None:
    from siyu.warehouse.sync import sync_all

    setup_groups(siyu, clock)
    (wang,) = members(siyu, "Wang Fang")
    args = {"session_factory": siyu.session_factory, "clock": clock, "member_id": wang}
    tags.tag_member(**args, tag="偏好:茶", actor=GUIDE)
    sync_all(session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=SHANGHAI)
    assert warehouse_tags(siyu) == {(wang, "偏好:茶")}
    # when
    change = tags.untag_member(**args, tag="偏好:茶", actor=OPERATOR)
    sync_all(session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=SHANGHAI)
    # then
    assert change.removed == ["偏好:茶"]
    assert warehouse_tags(siyu) == set()
    assert audit_actions(siyu)[-1] == (OPERATOR, "tag.remove", str(wang))


def test_tagging_a_merged_away_id_tags_the_survivor(siyu: Siyu, clock: FixedClock) -> None:
    setup_groups(siyu, clock)
    with transaction(siyu.session_factory) as session:
        pos = op.member(session, name="Wang Fang")
        mini = op.member(session, name="王芳")
        op.merge(session, merged=mini, survivor=pos)
        pos_id, mini_id = pos.id, mini.id
    change = tags.tag_member(
        session_factory=siyu.session_factory,
        clock=clock,
        member_id=mini_id,
        tag="偏好:茶",
        actor=GUIDE,
    )
    assert change.member_id == pos_id


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("no-colon", TagErrorCode.INVALID_TAG),
        ("missing:tea", TagErrorCode.GROUP_NOT_FOUND),
        ("偏好:咖啡", TagErrorCode.TAG_NOT_FOUND),
    ],
)
def test_bad_tags_are_refused_with_a_clear_code(
    siyu: Siyu, clock: FixedClock, tag: str, code: TagErrorCode
) -> None:
    setup_groups(siyu, clock)
    (wang,) = members(siyu, "Wang Fang")
    with pytest.raises(TagError) as raised:
        tags.tag_member(
            session_factory=siyu.session_factory, clock=clock, member_id=wang, tag=tag, actor=GUIDE
        )
    assert raised.value.code == code
    assert tag in raised.value.message


def test_an_unknown_member_is_refused(siyu: Siyu, clock: FixedClock) -> None:
    setup_groups(siyu, clock)
    with pytest.raises(TagError) as raised:
        tags.tag_member(
            session_factory=siyu.session_factory,
            clock=clock,
            member_id=999,
            tag="偏好:茶",
            actor=GUIDE,
        )
    assert raised.value.code == TagErrorCode.MEMBER_NOT_FOUND


def test_a_rule_that_is_not_valid_dsl_is_refused_naming_the_field(
    siyu: Siyu, clock: FixedClock
) -> None:
    setup_groups(siyu, clock)
    with pytest.raises(TagError) as raised:
        tags.define_tag(
            session_factory=siyu.session_factory,
            clock=clock,
            actor=OPERATOR,
            tag="偏好:新客",
            rule={"attr": "gender", "op": "eq"},
        )
    assert raised.value.code == TagErrorCode.INVALID_RULE
    assert "value" in raised.value.message


def buyers_rule(count: int) -> dict[str, object]:
    return {"event": "order_paid", "within_days": 90, "count": {"op": "gte", "value": count}}


def test_rule_tags_follow_the_orders_and_manual_tags_win_in_exclusive_groups(
    siyu: Siyu, clock: FixedClock
) -> None:
    # given: "value:loyal" = ≥ 2 orders in 90 days, "value:buyer" = ≥ 1 (defined second),
    # in an exclusive group where Li Lei holds the manual tag "value:vip"
    common = {"session_factory": siyu.session_factory, "clock": clock, "actor": OPERATOR}
    tags.create_group(**common, name="value", exclusive=True)
    tags.define_tag(**common, tag="value:loyal", rule=buyers_rule(2))
    tags.define_tag(**common, tag="value:buyer", rule=buyers_rule(1))
    tags.define_tag(**common, tag="value:vip")
    wang, li, zhao, chen = members(siyu, "Wang Fang", "Li Lei", "Zhao Min", "Chen Jing")
    with transaction(siyu.session_factory) as session:
        for member, order in [(wang, "W1"), (wang, "W2"), (li, "L1"), (li, "L2"), (zhao, "Z1")]:
            op.order_line(session, member_id=member, order_id=order)
    tags.tag_member(**common, member_id=li, tag="value:vip")
    # when
    result = tags.recompute_rule_tags(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, clock=clock, tz=SHANGHAI
    )
    # then
    assert [(o.tag, o.members, o.added, o.removed) for o in result.tags] == [
        ("value:loyal", 1, 1, 0),
        ("value:buyer", 1, 1, 0),
    ]
    assert warehouse_tags(siyu) == {
        (wang, "value:loyal"),
        (li, "value:vip"),
        (zhao, "value:buyer"),
    }
    assert chen not in {m for m, _ in warehouse_tags(siyu)}


def test_recompute_moves_a_member_between_rule_tags_and_a_rerun_changes_nothing(
    siyu: Siyu, clock: FixedClock
) -> None:
    common = {"session_factory": siyu.session_factory, "clock": clock, "actor": OPERATOR}
    tags.create_group(**common, name="value", exclusive=True)
    tags.define_tag(**common, tag="value:loyal", rule=buyers_rule(2))
    tags.define_tag(**common, tag="value:buyer", rule=buyers_rule(1))
    (zhao,) = members(siyu, "Zhao Min")
    run = {"session_factory": siyu.session_factory, "warehouse": siyu.warehouse, "tz": SHANGHAI}
    with transaction(siyu.session_factory) as session:
        op.order_line(session, member_id=zhao, order_id="Z1")
    tags.recompute_rule_tags(**run, clock=clock)
    assert warehouse_tags(siyu) == {(zhao, "value:buyer")}
    # when Zhao Min buys again
    with transaction(siyu.session_factory) as session:
        op.order_line(session, member_id=zhao, order_id="Z2")
    later = FixedClock(datetime(2026, 6, 19, 2, 0, tzinfo=UTC))
    tags.recompute_rule_tags(**run, clock=later)
    # then
    assert warehouse_tags(siyu) == {(zhao, "value:loyal")}
    rerun = tags.recompute_rule_tags(**run, clock=later)
    assert [(o.added, o.removed) for o in rerun.tags] == [(0, 0), (0, 0)]


def test_a_rule_tag_cannot_be_set_by_hand(siyu: Siyu, clock: FixedClock) -> None:
    common = {"session_factory": siyu.session_factory, "clock": clock, "actor": OPERATOR}
    tags.create_group(**common, name="value", exclusive=False)
    tags.define_tag(**common, tag="value:buyer", rule=buyers_rule(1))
    (wang,) = members(siyu, "Wang Fang")
    with pytest.raises(TagError) as raised:
        tags.tag_member(**common, member_id=wang, tag="value:buyer")
    assert raised.value.code == TagErrorCode.RULE_TAG_IS_COMPUTED


def test_list_tags_counts_members(siyu: Siyu, clock: FixedClock) -> None:
    setup_groups(siyu, clock)
    wang, li = members(siyu, "Wang Fang", "Li Lei")
    for member in (wang, li):
        tags.tag_member(
            session_factory=siyu.session_factory,
            clock=clock,
            member_id=member,
            tag="偏好:茶",
            actor=GUIDE,
        )
    listed = {v.tag: v.members for v in tags.list_tags(session_factory=siyu.session_factory)}
    assert listed == {"skin:dry": 0, "skin:oily": 0, "偏好:家居": 0, "偏好:茶": 2}
    groups = tags.list_groups(session_factory=siyu.session_factory)
    assert [(g.name, g.exclusive, g.tags) for g in groups] == [
        ("skin", True, ["skin:dry", "skin:oily"]),
        ("偏好", False, ["偏好:家居", "偏好:茶"]),
    ]
