"""`siyu warehouse export-to-clickhouse`: DuckDB (synced) → ClickHouse, here an in-memory chDB."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner, Result

from siyu.audit.models import AuditEntry
from siyu.bootstrap import bootstrap
from siyu.cli.main import _register_commands, app
from siyu.clock import FixedClock
from siyu.config import Settings
from siyu.db import transaction
from tests.factories import operational as op

NOW = FixedClock(datetime(2026, 6, 18, 2, 0, tzinfo=UTC))


def _demo_tea(data_dir: Path) -> None:
    siyu = bootstrap(Settings(environment="test", data_dir=data_dir), clock=NOW)
    with transaction(siyu.session_factory) as session:
        wang = op.member(session, name="Wang Fang")
        op.order_line(session, member_id=wang.id, order_id="A1", line_no=1)
        op.order_line(session, member_id=wang.id, order_id="A1", line_no=2)
    siyu.close()


def _export_demo_tea_to_chdb(tmp_path: Path) -> Result:
    """Demo Tea (not yet synced) exported to the ClickHouse named by SIYU_WAREHOUSE_URL."""
    _demo_tea(tmp_path / "data")
    _register_commands()
    return CliRunner().invoke(
        app,
        ["--data-dir", str(tmp_path / "data"), "warehouse", "export-to-clickhouse", "--json"],
        env={"SIYU_WAREHOUSE_URL": "chdb://", "SIYU_ENVIRONMENT": "test"},
    )


def test_export_to_clickhouse_syncs_then_copies_every_table(tmp_path: Path) -> None:
    # Given Demo Tea's Wang Fang with one two-line order, not yet synced,
    # When the operator exports to the ClickHouse warehouse named by SIYU_WAREHOUSE_URL
    result = _export_demo_tea_to_chdb(tmp_path)
    # Then the warehouse was synced first and every table copied
    assert result.exit_code == 0, result.output
    copied = json.loads(result.stdout)
    assert (copied["members"], copied["order_lines"], copied["order_totals"]) == (1, 2, 1)


def test_export_to_clickhouse_is_audited_as_a_data_export(tmp_path: Path) -> None:
    result = _export_demo_tea_to_chdb(tmp_path)
    assert result.exit_code == 0, result.output
    siyu = bootstrap(Settings(environment="test", data_dir=tmp_path / "data"), clock=NOW)
    with transaction(siyu.session_factory) as session:
        audited = session.execute(
            sa.select(AuditEntry.actor, AuditEntry.entity_type).where(
                AuditEntry.action == "data.export"
            )
        ).all()
    siyu.close()
    assert [tuple(row) for row in audited] == [("cli", "warehouse")]


def test_export_without_a_clickhouse_url_is_refused(tmp_path: Path) -> None:
    _demo_tea(tmp_path / "data")
    _register_commands()
    result = CliRunner().invoke(
        app,
        ["--data-dir", str(tmp_path / "data"), "warehouse", "export-to-clickhouse"],
        env={"SIYU_WAREHOUSE_URL": "", "SIYU_ENVIRONMENT": "test"},
    )
    assert result.exit_code == 2
    assert "no ClickHouse warehouse" in result.output
