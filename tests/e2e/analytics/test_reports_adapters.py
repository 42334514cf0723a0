"""`siyu report …` and GET /api/reports/… give the §4.6 JSON over synced operational data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

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
    """Demo Tea: Wang Fang bought twice (one two-line basket), Li Lei once then refunded."""
    settings = Settings(environment="test", data_dir=tmp_path / "data")
    siyu = bootstrap(settings, clock=NOW)
    with transaction(siyu.session_factory) as session:
        wang = op.member(session, name="Wang Fang")
        li = op.member(session, name="Li Lei")
        op.order_line(session, member_id=wang.id, order_id="W1", amount="30.00")
        op.order_line(session, member_id=wang.id, order_id="W1", line_no=2, amount="9.00")
        op.order_line(
            session, member_id=wang.id, order_id="W2", paid_at=datetime(2026, 6, 10, tzinfo=UTC)
        )
        op.order_line(session, member_id=li.id, order_id="L1")
        op.order_line(session, member_id=li.id, order_id="L1", line_no=2, status="refunded")
    siyu.close()
    return settings.data_dir


def cli(data_dir: Path, *args: str) -> dict[str, object]:
    _register_commands()
    result = CliRunner().invoke(app, ["--data-dir", str(data_dir), *args])
    assert result.exit_code == 0, result.output
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def test_cli_lifecycle_json(data_dir: Path) -> None:
    assert cli(data_dir, "report", "lifecycle", "--as-of", "2026-06-18", "--json") == {
        "as_of": "2026-06-18",
        "stages": {
            "registered": 1,
            "introduced": 0,
            "growing": 1,
            "mature": 0,
            "silent": 0,
            "churned": 0,
        },
    }


def test_cli_repurchase_json(data_dir: Path) -> None:
    assert cli(data_dir, "report", "repurchase", "--as-of", "2026-06-18", "--json") == {
        "as_of": "2026-06-18",
        "window_days": 365,
        "buyers": 1,
        "repeat_buyers": 1,
        "rate": 1.0,
    }


def test_cli_rejects_a_malformed_date(data_dir: Path) -> None:
    _register_commands()
    result = CliRunner().invoke(
        app, ["--data-dir", str(data_dir), "report", "rfm", "--as-of", "18/06/2026", "--json"]
    )
    assert result.exit_code == 2
    assert "invalid_date" in result.output


def test_cli_table_without_json(data_dir: Path) -> None:
    _register_commands()
    result = CliRunner().invoke(
        app, ["--data-dir", str(data_dir), "report", "retention", "--as-of", "2026-06-18"]
    )
    assert result.exit_code == 0
    assert "2026-06" in result.stdout


def test_api_rfm_and_details(data_dir: Path) -> None:
    siyu = bootstrap(Settings(environment="test", data_dir=data_dir), clock=NOW)
    try:
        client = TestClient(create_app(siyu))
        body = client.get("/api/reports/rfm", params={"as_of": "2026-06-18", "sync": True}).json()
        assert body["members"] == 1
        assert body["means"] == {"r": 8.0, "f": 2.0, "m": 78.0}
        assert body["classes"]["general_winback"] == 1
        details = client.get("/api/reports/rfm/details", params={"as_of": "2026-06-18"}).json()
        assert details["rows"][-1] == {
            "class": "general_winback",
            "members": 1,
            "member_share": 1.0,
            "spend": "78.00",
            "spend_share": 1.0,
        }
        assert client.get("/api/reports/nope").status_code == 404
    finally:
        siyu.close()
