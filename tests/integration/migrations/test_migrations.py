"""The migrations build the whole schema on an empty database, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from siyu.migrations.runner import upgrade
from siyu.model_registry import load_all_models


def test_upgrade_builds_every_table_on_an_empty_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"

    upgrade(url)

    tables = set(sa.inspect(sa.create_engine(url)).get_table_names())
    assert set(load_all_models().tables) <= tables


def test_upgrade_builds_every_table_on_an_empty_postgresql_database(postgres_url: str) -> None:
    # postgres_url is cloned from a template that ran `upgrade` on an empty database
    engine = sa.create_engine(postgres_url)

    tables = set(sa.inspect(engine).get_table_names())

    assert set(load_all_models().tables) <= tables
    engine.dispose()


def test_models_and_migrations_do_not_drift(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'drift.db'}"
    upgrade(url)
    engine = sa.create_engine(url)

    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), load_all_models())

    assert diff == []
