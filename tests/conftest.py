"""Shared fixtures: a fresh operational store per test (SQLite, and PostgreSQL when available),
a fixed clock, and the rule that real components may be skipped on a laptop but never in CI."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from siyu.bootstrap import Siyu, bootstrap
from siyu.clock import FixedClock
from siyu.config import Settings
from siyu.migrations.runner import upgrade

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")


def require_real(component: str, available: bool, why: str) -> None:
    """Skip a test whose real component is missing — except in CI, where that is a failure."""
    if available:
        return
    message = f"{component} not available: {why}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: real components are mandatory)")
    pytest.skip(message)


@pytest.fixture
def clock() -> FixedClock:
    """Business day 2026-06-18 10:00 in Shanghai (618) unless a test moves it."""
    return FixedClock(datetime(2026, 6, 18, 2, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is much faster)."""
    path = tmp_path_factory.mktemp("template") / "siyu.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    require_real("PostgreSQL", bool(POSTGRES_URL), "set SIYU_TEST_POSTGRES_URL")
    assert POSTGRES_URL
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"siyu_template_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    upgrade(_with_database(POSTGRES_URL, name))
    yield name
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _with_database(url: str, name: str) -> str:
    return sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database cloned from the migrated template."""
    assert POSTGRES_URL
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"siyu_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"'))
    yield _with_database(POSTGRES_URL, name)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """Each test using this runs once on SQLite and once on a real PostgreSQL server."""
    if request.param == "sqlite":
        path = tmp_path / "siyu.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "siyu-data",
        database_url=database_url,
        warehouse_url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
    )


@pytest.fixture
def siyu(settings: Settings, clock: FixedClock) -> Iterator[Siyu]:
    """A composed siyu on a fresh store; the schema is already migrated by the template."""
    app = bootstrap(settings, clock=clock, migrate=False)
    yield app
    app.close()


@pytest.fixture
def sqlite_siyu(tmp_path: Path, sqlite_template: Path, clock: FixedClock) -> Iterator[Siyu]:
    """SQLite only, for tests whose subject is not the operational store."""
    path = tmp_path / "siyu.db"
    shutil.copy(sqlite_template, path)
    settings = Settings(
        environment="test",
        data_dir=tmp_path / "siyu-data",
        database_url=f"sqlite:///{path}",
        warehouse_url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
    )
    app = bootstrap(settings, clock=clock, migrate=False)
    yield app
    app.close()
