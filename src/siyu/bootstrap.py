"""Composition root: builds the engine, session factory, warehouse and clock from settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.clock import Clock, SystemClock
from siyu.config import Settings
from siyu.db import create_db_engine, create_session_factory
from siyu.migrations.runner import upgrade
from siyu.warehouse.duckdb import DuckDBWarehouse


@dataclass
class Siyu:
    """Everything a use case needs, built once per process (or per test)."""

    settings: Settings
    clock: Clock
    engine: Engine
    session_factory: sessionmaker[Session]
    _warehouse: DuckDBWarehouse | None = field(default=None, repr=False)

    @property
    def warehouse(self) -> DuckDBWarehouse:
        if self._warehouse is None:
            self._warehouse = DuckDBWarehouse.from_url(self.settings.resolved_warehouse_url)
        return self._warehouse

    def close(self) -> None:
        if self._warehouse is not None:
            self._warehouse.close()
        self.engine.dispose()


def bootstrap(settings: Settings, *, clock: Clock | None = None, migrate: bool = True) -> Siyu:
    """Wire siyu for one process; migrates the operational store unless told not to."""
    from siyu.access.redaction import install_secret_redaction

    install_secret_redaction(settings)  # secrets never reach a log (issue #8)
    if settings.uses_embedded_storage:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    if migrate:
        upgrade(url)
    engine = create_db_engine(url)
    return Siyu(
        settings=settings,
        clock=clock or SystemClock(),
        engine=engine,
        session_factory=create_session_factory(engine),
    )
