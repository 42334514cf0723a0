"""Composition root: builds the engine, session factory, warehouses and clock from settings.

Warehouses (ADR 0003): `warehouse` is always the embedded DuckDB file, the target of the
warehouse sync and of reports/profiles. `segment_warehouse` is where segments are evaluated:
the ClickHouse warehouse when SIYU_WAREHOUSE_URL is `clickhouse://…` (a server, through
clickhouse-connect) or `chdb://PATH` (embedded chDB), else the same DuckDB warehouse.
ClickHouse is loaded from DuckDB by `siyu warehouse export-to-clickhouse`.
`settings_for(session_factory)` lets worker hooks, which only receive a session factory, find
the settings of the process that built it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.clock import Clock, SystemClock
from siyu.config import Settings
from siyu.db import create_db_engine, create_session_factory
from siyu.loyalty.redemption_batch import RedemptionBatcher
from siyu.migrations.runner import upgrade
from siyu.warehouse.clickhouse import ClickHouseWarehouse
from siyu.warehouse.duckdb import DuckDBWarehouse

_SETTINGS: weakref.WeakKeyDictionary[sessionmaker[Session], Settings] = weakref.WeakKeyDictionary()


@dataclass
class Siyu:
    """Everything a use case needs, built once per process (or per test)."""

    settings: Settings
    clock: Clock
    engine: Engine
    session_factory: sessionmaker[Session]
    _warehouse: DuckDBWarehouse | None = field(default=None, repr=False)
    _clickhouse: ClickHouseWarehouse | None = field(default=None, repr=False)
    # One per process, shared by the API's request threads: coupon redemptions group-commit.
    redemptions: RedemptionBatcher = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.redemptions = RedemptionBatcher(self.session_factory)

    @property
    def warehouse(self) -> DuckDBWarehouse:
        if self._warehouse is None:
            self._warehouse = DuckDBWarehouse.from_url(self.settings.resolved_warehouse_url)
        return self._warehouse

    @property
    def segment_warehouse(self) -> DuckDBWarehouse | ClickHouseWarehouse:
        """Where segments are previewed, counted and snapshotted (see the module docstring)."""
        url = self.settings.clickhouse_url
        if url is None:
            return self.warehouse
        if self._clickhouse is None:
            self._clickhouse = ClickHouseWarehouse.from_url(url)
        return self._clickhouse

    def close(self) -> None:
        if self._warehouse is not None:
            self._warehouse.close()
        if self._clickhouse is not None:
            self._clickhouse.close()
            self._clickhouse = None
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
    session_factory = create_session_factory(engine)
    _SETTINGS[session_factory] = settings
    return Siyu(
        settings=settings,
        clock=clock or SystemClock(),
        engine=engine,
        session_factory=session_factory,
    )


def settings_for(session_factory: sessionmaker[Session]) -> Settings | None:
    """The settings `bootstrap` built this session factory from (None if it did not)."""
    return _SETTINGS.get(session_factory)
