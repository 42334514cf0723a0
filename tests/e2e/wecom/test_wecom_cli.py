"""`siyu wecom work` and `siyu wecom inbox-worker` from the command line."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from siyu.bootstrap import bootstrap
from siyu.channels.wecom.fake_server import build_app
from siyu.channels.wecom.models import WeComFollow, WeComInbox, WeComWelcome
from siyu.cli.main import _register_commands, app
from siyu.clock import FixedClock
from siyu.config import Settings
from siyu.growth import service as growth
from siyu.growth.models import CodeScope
from tests.e2e.serving import served
from tests.factories.brand import guide_xiao_li, store_sh001
from tests.integration.wecom.harness import CORP_ID, SECRET, harness

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


def test_inbox_worker_welcomes_and_ingests_adds_from_a_wecom_over_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given Xiao Li's greeting code and two scans waiting in the inbox, and WeCom on a real port
    settings = Settings(environment="test", data_dir=tmp_path / "data")
    siyu = bootstrap(settings)
    h = harness(siyu)

    async def scan() -> None:
        with siyu.session_factory() as session:
            guide_xiao_li(session, store=store_sh001(session))
            session.commit()
        await growth.create_channel_code(
            session_factory=siyu.session_factory, gateway=h.client.add_contact_way,
            name="Xiao Li card", scope=CodeScope.GUIDE, userids=["xiaoli"], state="g-xiaoli",
            welcome={"text": "Hi {name}"}, now=siyu.clock.now(),
        )  # fmt: skip
        for name in ("Wang Fang", "Li Na"):
            fields = h.fake.simulate_add(userid="xiaoli", state="g-xiaoli", name=name)
            await h.fake.push(fields, http=h.siyu_http)
        await h.aclose()

    asyncio.run(scan())
    # The wiring is under test, not the 20 s deadline (tested in the lane's own tests): the
    # fake WeCom's clock stops at the scans, so a slow start of the command (it once took
    # > 20 s in a full CI run) cannot expire the WelcomeCodes.
    frozen = h.fake.now()
    h.fake.now = lambda: frozen
    _register_commands()
    with served(build_app(h.fake)) as wecom_url:
        monkeypatch.setenv("SIYU_WECOM_API_BASE", wecom_url)
        monkeypatch.setenv("SIYU_WECOM_CORP_ID", CORP_ID)
        monkeypatch.setenv("SIYU_WECOM_SECRET", SECRET)
        monkeypatch.setenv("SIYU_WECOM_WELCOME_WINDOW_SECONDS", "600")  # same reason

        # when the inbox worker runs until the inbox is empty
        result = CliRunner().invoke(
            app,
            ["--data-dir", str(settings.data_dir), "wecom", "inbox-worker", "--drain",
             "--seconds", "60"],
        )  # fmt: skip

    # then both customers were greeted once and became follows
    assert result.exit_code == 0, result.output
    with siyu.session_factory() as session:
        seen = {
            "inbox": session.execute(sa.select(WeComInbox.status, WeComInbox.error)).all(),
            "welcomes": session.execute(sa.select(WeComWelcome.status, WeComWelcome.error)).all(),
            "calls": h.fake.calls,
            "output": result.output,
        }
    assert sorted(w["text"]["content"] for w in h.fake.welcomes_sent) == [
        "Hi Li Na", "Hi Wang Fang",
    ], seen  # fmt: skip
    assert h.fake.calls["externalcontact/get"] == 2, seen  # the ingest reused the lane's
    with siyu.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(WeComFollow)) == 2
    siyu.close()


def test_inbox_worker_without_a_wecom_secret_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIYU_WECOM_SECRET", raising=False)
    _register_commands()

    result = CliRunner().invoke(
        app, ["--data-dir", str(tmp_path / "data"), "wecom", "inbox-worker", "--seconds", "1"]
    )

    assert result.exit_code == 2
    assert "SIYU_WECOM_SECRET" in result.output
