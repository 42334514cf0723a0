"""HTTP batch ingest: POST a JSON array of members, order lines or events (DESIGN §4.2 names).

One request is one transaction. Rejected rows are answered with their 1-based position and
reason, and kept as dead letters; re-sending rows already ingested counts them as duplicates.
A request carries at most MAX_ROWS rows so one call cannot hold the single SQLite writer for
long; larger loads belong to `siyu import`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException
from pydantic import BaseModel

from siyu.api.deps import SiyuDep
from siyu.ingest import service as ingest_service
from siyu.ingest.errors import IngestError

router = APIRouter(prefix="/api/ingest", tags=["ingest"])
MAX_ROWS = 10_000


class RejectedRow(BaseModel):
    line: int
    reason: str


class IngestResult(BaseModel):
    accepted: int
    rejected: int
    duplicates: int
    warnings: int
    rejections: list[RejectedRow]


@router.post("/{kind}")
def ingest(
    kind: Literal["members", "orders", "events"],
    siyu: SiyuDep,
    rows: Annotated[list[dict[str, Any]], Body(max_length=MAX_ROWS)],
) -> IngestResult:
    try:
        result = ingest_service.ingest_records(
            session_factory=siyu.session_factory,
            kind=kind,
            rows=rows,
            now=siyu.clock.now(),
            tz=siyu.settings.tz,
            max_member_nos=siyu.settings.identity_max_member_nos_per_value,
        )
    except IngestError as error:
        raise HTTPException(
            status_code=422, detail={"code": error.code.value, "message": error.message}
        ) from error
    return IngestResult(
        accepted=result.accepted,
        rejected=result.rejected,
        duplicates=result.duplicates,
        warnings=result.warnings,
        rejections=[RejectedRow(line=r.line, reason=r.reason) for r in result.rejections],
    )
