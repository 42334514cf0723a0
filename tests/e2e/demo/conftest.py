"""One demo brand per test session: built once with `siyu demo --no-serve`, shared read-mostly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.bootstrap import bootstrap
from siyu.cli.main import _register_commands, app
from siyu.config import Settings

DEMO_MEMBERS = "300"


def run_demo(data_dir: Path, *extra: str) -> object:
    _register_commands()
    arguments = ["--data-dir", str(data_dir), "demo", "--no-serve", "--members", DEMO_MEMBERS]
    return CliRunner().invoke(app, [*arguments, *extra])


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("demo") / "siyu-data"
    result = run_demo(data_dir)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    return data_dir


@pytest.fixture(scope="session")
def console(demo_dir: Path) -> Iterator[TestClient]:
    siyu = bootstrap(Settings(data_dir=demo_dir))
    with TestClient(create_app(siyu)) as client:
        yield client
