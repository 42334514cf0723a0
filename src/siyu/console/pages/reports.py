"""Console pages of the four reports: /console/reports/{lifecycle|rfm|retention|repurchase}.

Server-rendered inside the console shell with inline SVG charts (no scripts, no CDN). The data
comes only from `siyu.analytics.service` (the same numbers as `siyu report … --json`) plus its
console extras: lifecycle month-over-month stage flows, the RFM table with spend shares, the
retention heatmap and the repurchase trend. The pages do not sync the warehouse: they show what
the last sync (import, worker, overview page, `siyu report`) left, so a report view never writes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from siyu.analytics import service as analytics_service
from siyu.analytics.errors import AnalyticsError
from siyu.analytics.lifecycle import LifecycleStage
from siyu.api.deps import SiyuDep
from siyu.console.auth import CurrentUser
from siyu.console.nav import NavEntry
from siyu.console.templating import render

router = APIRouter(prefix="/console/reports", tags=["console"], include_in_schema=False)
REPORTS = [
    ("lifecycle", "Lifecycle"),
    ("rfm", "RFM"),
    ("retention", "Retention"),
    ("repurchase", "Repurchase"),
]
nav = [
    NavEntry(section="Reports", label=label, path=f"/console/reports/{key}", order=10 * index)
    for index, (key, label) in enumerate(REPORTS)
]


@router.get("", include_in_schema=False)
def index(user: CurrentUser) -> RedirectResponse:
    return RedirectResponse("/console/reports/lifecycle")


@router.get("/{name}", response_class=HTMLResponse)
def report_page(
    request: Request,
    name: str,
    siyu: SiyuDep,
    user: CurrentUser,
    as_of: str | None = Query(default=None),
) -> HTMLResponse:
    titles = dict(REPORTS)
    if name not in titles:
        raise HTTPException(status_code=404, detail=f"no report {name!r}")
    tz = siyu.settings.tz
    try:
        day = analytics_service.parse_as_of(
            as_of or None, today=siyu.clock.now().astimezone(tz).date()
        )
        report = analytics_service.run_report(name=name, warehouse=siyu.warehouse, as_of=day, tz=tz)
        extras = analytics_service.console_extras(
            name=name, warehouse=siyu.warehouse, as_of=day, tz=tz
        )
    except AnalyticsError as error:
        raise HTTPException(status_code=422, detail=error.message) from error
    context = {
        "name": name,
        "title": f"{titles[name]} report",
        "reports": REPORTS,
        "as_of": day.isoformat(),
        "report": report,
        **VIEWS[name](report, extras, day),
    }
    return render(request, f"reports/{name}.html", context)


def _lifecycle_view(report: dict[str, Any], flows: dict[str, Any], day: date) -> dict[str, Any]:
    stages = [s.value for s in LifecycleStage]
    matrix = {(f["from"], f["to"]): f["members"] for f in flows["flows"]}
    return {
        "stages": stages,
        "stage_bars": [
            {"label": s, "value": report["stages"][s], "text": str(report["stages"][s])}
            for s in stages
        ],
        "flows": flows,
        "flow_rows": ["new", *stages],
        "flow_matrix": matrix,
    }


def _rfm_view(report: dict[str, Any], table: dict[str, Any], day: date) -> dict[str, Any]:
    bars = [
        {
            "label": row["class"],
            "value": row["spend_share"],
            "text": f"{row['spend_share'] * 100:.1f}%",
        }
        for row in table["rows"]
    ]
    return {"table": table, "spend_bars": bars}


def _retention_view(report: dict[str, Any], extras: Any, day: date) -> dict[str, Any]:
    cohorts = report["cohorts"]
    columns = max((len(c["retention"]) for c in cohorts), default=0)
    rows = [{"label": c["month"], "cells": c["retention"]} for c in cohorts]
    return {"heat_rows": rows, "columns": columns}


def _repurchase_view(
    report: dict[str, Any], trend: list[dict[str, Any]], day: date
) -> dict[str, Any]:
    points = [
        {"label": p["as_of"][:7], "value": p["rate"], "text": f"{p['rate'] * 100:.1f}%"}
        for p in trend
    ]
    return {"trend": trend, "trend_points": points}


VIEWS: dict[str, Callable[[dict[str, Any], Any, date], dict[str, Any]]] = {
    "lifecycle": _lifecycle_view,
    "rfm": _rfm_view,
    "retention": _retention_view,
    "repurchase": _repurchase_view,
}
