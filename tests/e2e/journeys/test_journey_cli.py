"""`siyu journey apply / preview / show` and `siyu worker --once --now` end to end (SQLite)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from siyu.bootstrap import bootstrap
from siyu.cli.main import _register_commands, app
from siyu.clock import FixedClock
from siyu.config import Settings
from siyu.db import transaction
from tests.factories.journeys import add_event, add_member

REGISTERED = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
WELCOME = """
name: welcome
trigger: {type: event, event: member_registered}
steps:
  - {id: hello, type: action, action: send_message,
     params: {body: "Hi {{ member.name }}, see you at {{ member.store_code }}"}}
"""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Demo Tea with Wang Fang (member 1) registering at SH001 on 18 June."""
    settings = Settings(environment="test", data_dir=tmp_path / "data")
    siyu = bootstrap(settings, clock=FixedClock(REGISTERED))
    with transaction(siyu.session_factory) as db:
        wang = add_member(db, name="Wang Fang", registered_at=REGISTERED)
        add_event(db, member_id=wang, type="member_registered", at=REGISTERED)
    siyu.close()
    (tmp_path / "welcome.yaml").write_text(WELCOME, encoding="utf-8")
    return settings.data_dir


def cli(data_dir: Path, *args: str) -> Any:
    _register_commands()
    result = CliRunner().invoke(app, ["--data-dir", str(data_dir), *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_apply_preview_then_run_the_worker_once_and_read_the_counts(data_dir: Path) -> None:
    applied = cli(data_dir, "journey", "apply", str(data_dir.parent / "welcome.yaml"), "--json")
    preview = cli(data_dir, "journey", "preview", "welcome", "--member", "1", "--json")
    cli(data_dir, "worker", "--once", "--now", "2026-06-18T10:05:00+08:00", "--json")
    shown = cli(data_dir, "journey", "show", "welcome", "--json")

    assert applied["outcome"] == "created"
    assert preview == [
        {
            "step_id": "hello",
            "channel": "sandbox",
            "subject": "",
            "body": "Hi Wang Fang, see you at SH001",
            "error": None,
        }
    ]
    assert shown["stats"]["enrollments"]["completed"] == 1
    assert [(s["step_id"], s["entered"]) for s in shown["stats"]["steps"]] == [("hello", 1)]
