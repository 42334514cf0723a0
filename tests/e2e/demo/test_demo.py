"""`siyu demo` builds the demo brand "Demo Tea" once, and every console page works on it.

The build is the same one `make demo` runs, at a small size, so this module is also the check
that every domain composes: a page that breaks on real-looking data fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from siyu.api.app import create_app
from siyu.bootstrap import bootstrap
from siyu.config import Settings
from siyu.demo.build import DEMO_ADMIN, DEMO_USERS
from tests.e2e.console.helpers import login
from tests.e2e.demo.conftest import DEMO_MEMBERS, run_demo


def test_demo_builds_every_stage_and_records_it(demo_dir: Path) -> None:
    marker = json.loads((demo_dir / "demo.json").read_text(encoding="utf-8"))

    assert marker["members"] == int(DEMO_MEMBERS)
    assert marker["facts"]["members"] > 200
    assert set(marker["facts"]["journeys"]) >= {"new-member-sop", "win-back"}
    assert "rejected with reasons" in marker["stages"]["import"]


def test_demo_run_again_reuses_the_built_brand(demo_dir: Path) -> None:
    built_at = json.loads((demo_dir / "demo.json").read_text(encoding="utf-8"))["built_at"]

    result = run_demo(demo_dir)

    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "already built" in result.output  # type: ignore[attr-defined]
    assert "login admin / siyu-demo" in result.output  # type: ignore[attr-defined]
    marker = json.loads((demo_dir / "demo.json").read_text(encoding="utf-8"))
    assert marker["built_at"] == built_at


def test_demo_rejected_rows_are_kept_with_their_reasons(demo_dir: Path) -> None:
    rejected = sorted((demo_dir / "demo-input").glob("*.rejected.csv"))

    assert rejected, "the generator's malformed rows must land in rejected-rows files"
    assert all("reason" in path.read_text(encoding="utf-8").splitlines()[0] for path in rejected)


_NAV_LINK = re.compile(r'href="(/console/[^"#?]*)"')


def test_every_console_page_linked_from_the_navigation_renders_for_hq(console: TestClient) -> None:
    username, password = DEMO_ADMIN
    assert login(console, username, password).status_code == 303
    start = console.get("/console/")
    assert start.status_code == 200
    pages = sorted(set(_NAV_LINK.findall(start.text)) - {"/console/logout"})

    broken = {path: console.get(path).status_code for path in pages}

    assert len(pages) >= 4
    assert {path: code for path, code in broken.items() if code != 200} == {}


@pytest.mark.parametrize(("username", "password", "role"), DEMO_USERS)
def test_demo_supervisor_and_guide_can_sign_in(
    demo_dir: Path, username: str, password: str, role: str
) -> None:
    siyu = bootstrap(Settings(data_dir=demo_dir))
    with TestClient(create_app(siyu)) as client:
        assert login(client, username, password).status_code == 303
        assert client.get("/console/").status_code == 200
