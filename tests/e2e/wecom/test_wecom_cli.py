"""`siyu wecom work` without a corp secret still turns stored callbacks into follows."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from siyu.bootstrap import bootstrap
from siyu.channels.wecom.models import WeComFollow
from siyu.cli.main import _register_commands, app
from siyu.clock import FixedClock
from siyu.config import Settings
from tests.integration.wecom.harness import harness

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)


def test_work_processes_the_inbox_without_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIYU_WECOM_SECRET", raising=False)
    settings = Settings(environment="test", data_dir=tmp_path / "data")
    siyu = bootstrap(settings, clock=FixedClock(NOW))
    h = harness(siyu)

    async def push() -> None:
        fields = h.fake.simulate_add(
            userid="xiaoli", state=None, name="Wang Fang", external_userid="wmWangFang"
        )
        await h.fake.push(fields, http=h.siyu_http)
        await h.aclose()

    asyncio.run(push())
    _register_commands()

    result = CliRunner().invoke(
        app, ["--data-dir", str(settings.data_dir), "wecom", "work", "--now", NOW.isoformat()]
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"done": 1, "talked_to_wecom": False}
    with siyu.session_factory() as session:
        assert session.scalars(sa.select(WeComFollow.external_userid)).all() == ["wmWangFang"]
    siyu.close()
