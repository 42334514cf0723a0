"""`siyu wecom code-stats` and GET /api/wecom/codes/stats over the same Demo Tea data (SQLite)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.bootstrap import bootstrap
from siyu.cli.main import _register_commands, app
from siyu.clock import FixedClock
from siyu.config import Settings
from tests.integration.growth.scenario import two_codes_three_customers

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
EXPECTED = [
    ("SH001 counter", 2, 1, 1, 2, 1, 0.5),
    ("Xiao Li card", 1, 0, 1, 1, 0, 0.0),
]


def _row(r: dict[str, object]) -> tuple[object, ...]:
    keys = ("name", "adds", "deletions", "net", "attributed", "converted", "conversion")
    return tuple(r[k] for k in keys)


def test_cli_and_api_report_the_same_code_stats(tmp_path: Path) -> None:
    settings = Settings(environment="test", data_dir=tmp_path / "data")
    siyu = bootstrap(settings, clock=FixedClock(NOW))
    asyncio.run(two_codes_three_customers(siyu))

    with TestClient(create_app(siyu)) as client:
        api = client.get("/api/wecom/codes/stats").json()
    siyu.close()
    _register_commands()
    result = CliRunner().invoke(
        app, ["--data-dir", str(settings.data_dir), "wecom", "code-stats", "--json"]
    )

    assert result.exit_code == 0, result.output
    assert [_row(r) for r in json.loads(result.stdout)] == EXPECTED
    assert [_row(r) for r in api] == EXPECTED


def test_the_cli_prints_a_table_for_people(tmp_path: Path) -> None:
    settings = Settings(environment="test", data_dir=tmp_path / "data")
    siyu = bootstrap(settings, clock=FixedClock(NOW))
    asyncio.run(two_codes_three_customers(siyu))
    siyu.close()
    _register_commands()

    result = CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), "wecom", "code-stats"])

    assert result.exit_code == 0, result.output
    assert "counter" in result.stdout
    assert "50.0%" in result.stdout
