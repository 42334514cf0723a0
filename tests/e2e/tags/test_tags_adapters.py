"""`siyu tags …`, `siyu profiles …` and /api/tags over one embedded Demo Tea store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.bootstrap import bootstrap
from siyu.cli.main import _register_commands, app
from siyu.clock import FixedClock
from siyu.config import Settings
from siyu.db import transaction
from tests.factories import operational as op

NOW = FixedClock(datetime(2026, 6, 18, 2, 0, tzinfo=UTC))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Demo Tea: Wang Fang (member 1) bought twice, Li Lei (member 2) never."""
    settings = Settings(environment="test", data_dir=tmp_path / "data")
    siyu = bootstrap(settings, clock=NOW)
    with transaction(siyu.session_factory) as session:
        wang = op.member(session, name="Wang Fang")
        op.member(session, name="Li Lei")
        op.order_line(session, member_id=wang.id, order_id="W1")
        op.order_line(session, member_id=wang.id, order_id="W2")
    siyu.close()
    return settings.data_dir


def cli(data_dir: Path, *args: str, code: int = 0) -> Any:
    _register_commands()
    result = CliRunner().invoke(app, ["--data-dir", str(data_dir), *args])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if code == 0 else result.output


def test_cli_defines_tags_tags_a_member_and_recomputes_rules(data_dir: Path) -> None:
    cli(data_dir, "tags", "group-create", "skin", "--exclusive")
    cli(data_dir, "tags", "group-create", "value")
    cli(data_dir, "tags", "define", "skin:dry")
    rule = json.dumps(
        {"event": "order_paid", "within_days": 90, "count": {"op": "gte", "value": 2}}
    )
    cli(data_dir, "tags", "define", "value:repeat", "--rule", rule)
    added = cli(data_dir, "tags", "add", "2", "skin:dry", "--actor", "guide:xiao-li")
    assert added == {"member_id": 2, "added": ["skin:dry"], "removed": []}
    recomputed = cli(data_dir, "tags", "recompute", "--now", "2026-06-18T10:00:00+08:00", "--json")
    assert recomputed == {"tags": [{"tag": "value:repeat", "members": 1, "added": 1, "removed": 0}]}
    shown = cli(data_dir, "tags", "show", "1", "--json")
    assert [(t["tag"], t["source"]) for t in shown] == [("value:repeat", "rule")]
    listed = cli(data_dir, "tags", "list", "--json")
    assert {t["tag"]: t["members"] for t in listed} == {"skin:dry": 1, "value:repeat": 1}


def test_cli_refuses_an_unknown_group_with_its_code(data_dir: Path) -> None:
    output = cli(data_dir, "tags", "define", "nope:x", code=2)
    assert "tag_group_not_found" in output


def test_cli_profiles_refresh_then_show(data_dir: Path) -> None:
    assert cli(data_dir, "profiles", "refresh", "--full")["members"] == 2
    profile = cli(data_dir, "profiles", "show", "1", "--as-of", "2026-06-18", "--json")
    assert (profile["orders_lifetime"], profile["lifecycle_stage"]) == (2, "growing")


def test_api_tags_round_trip(data_dir: Path) -> None:
    siyu = bootstrap(Settings(environment="test", data_dir=data_dir), clock=NOW)
    client = TestClient(create_app(siyu))
    actor = {"X-Siyu-Actor": "operator:hq-anna"}
    try:
        assert (
            client.post("/api/tags/groups", json={"name": "偏好"}, headers=actor).status_code == 201
        )
        assert client.post("/api/tags", json={"tag": "偏好:茶"}, headers=actor).status_code == 201
        tagged = client.post("/api/tags/members/1", json={"tag": "偏好:茶"}, headers=actor)
        assert tagged.json() == {"member_id": 1, "added": ["偏好:茶"], "removed": []}
        assert [t["tag"] for t in client.get("/api/tags/members/1").json()] == ["偏好:茶"]
        removed = client.delete("/api/tags/members/1/偏好:茶", headers=actor)
        assert removed.json()["removed"] == ["偏好:茶"]
        missing = client.post("/api/tags/members/99", json={"tag": "偏好:茶"}, headers=actor)
        assert (missing.status_code, missing.json()["detail"]["code"]) == (404, "member_not_found")
    finally:
        siyu.close()
