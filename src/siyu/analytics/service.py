"""Use cases of analytics: run a named report as of a date, after bringing the warehouse up to
date. The adapters (CLI, API, console) call only this module."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, tzinfo
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from siyu.analytics import reports
from siyu.analytics.errors import AnalyticsError, AnalyticsErrorCode
from siyu.warehouse.duckdb import DuckDBWarehouse
from siyu.warehouse.sync import sync_all

REPORTS: dict[str, Callable[..., dict[str, Any]]] = {
    "lifecycle": reports.lifecycle_report,
    "rfm": reports.rfm_report,
    "retention": reports.retention_report,
    "repurchase": reports.repurchase_report,
}


def parse_as_of(value: str | None, *, today: date) -> date:
    """`YYYY-MM-DD`, or today in the business time zone when not given."""
    if value is None:
        return today
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise AnalyticsError(
            AnalyticsErrorCode.INVALID_DATE, f"as_of: {value!r} is not a date (YYYY-MM-DD)"
        ) from error


def report_config(*, tz: tzinfo) -> reports.ReportConfig:
    """Thresholds from SIYU_REPORT_* (defaults §4.5), in the business time zone."""
    try:
        base = reports.ReportSettings().config()
    except ValueError as error:
        raise AnalyticsError(AnalyticsErrorCode.INVALID_THRESHOLD, str(error)) from error
    return reports.ReportConfig(
        lifecycle=base.lifecycle,
        rfm=base.rfm,
        repurchase_window_days=base.repurchase_window_days,
        retention_months=base.retention_months,
        tz=tz,
    )


def run_report(
    *,
    name: str,
    warehouse: DuckDBWarehouse,
    as_of: date,
    tz: tzinfo,
    session_factory: sessionmaker[Session] | None = None,
) -> dict[str, Any]:
    """The report's §4.6 JSON; syncs the warehouse first when given the operational store."""
    if name not in REPORTS:
        raise AnalyticsError(
            AnalyticsErrorCode.UNKNOWN_REPORT, f"no report {name!r}; one of {', '.join(REPORTS)}"
        )
    if session_factory is not None:
        sync_all(session_factory=session_factory, warehouse=warehouse, tz=tz)
    return REPORTS[name](warehouse=warehouse, as_of=as_of, config=report_config(tz=tz))


def console_extras(*, name: str, warehouse: DuckDBWarehouse, as_of: date, tz: tzinfo) -> Any:
    """The chart data a console page shows beside the report."""
    config = report_config(tz=tz)
    if name == "lifecycle":
        return reports.lifecycle_flows(warehouse=warehouse, as_of=as_of, config=config)
    if name == "rfm":
        return reports.rfm_table(warehouse=warehouse, as_of=as_of, config=config)
    if name == "repurchase":
        return reports.repurchase_trend(warehouse=warehouse, as_of=as_of, config=config)
    return None
