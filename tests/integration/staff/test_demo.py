"""The demo brand's people: owners, tasks for the first guides, a PK contest, a pos-sync key."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from siyu.access import apikeys
from siyu.bootstrap import Siyu
from siyu.staff import demo, leaderboards
from siyu.staff.models_guides import GuideTask
from tests.factories.people import seed_people

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)


def test_populate_attributes_tasks_contests_and_issues_a_key_once(sqlite_siyu: Siyu) -> None:
    siyu = sqlite_siyu
    people = seed_people(siyu.session_factory, owners=False)
    first = demo.populate(siyu, now=NOW)  # guides 1-3: Xiao Li, Xiao Wang (no members), Xiao Zhao
    again = demo.populate(siyu, now=NOW)
    assert first.startswith("staff: 3 members owned (3 attributed now), 2 guide tasks")
    assert "API key pos-sync sk_" in first
    assert "exists (sk_" in again
    with siyu.session_factory() as session:
        titles = session.scalars(
            sa.select(GuideTask.title).where(GuideTask.guide_id == people.guides["xiaoli"])
        ).all()
    assert titles == ["Call these silent members"]  # Xiao Li owns one member: Wang Fang
    contests = leaderboards.list_contests(session_factory=siyu.session_factory, tz=siyu.settings.tz)
    assert [c.name for c in contests] == ["PK SH001 vs SH002"]
    assert [k.name for k in apikeys.list_api_keys(session_factory=siyu.session_factory)] == [
        "pos-sync"
    ]
