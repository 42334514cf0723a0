"""Lifecycle stage and RFM class of members, as the analytics reports define them (DESIGN §4.5).

Segments never define the stages themselves: they embed the reports' own queries, so a segment
`{"lifecycle": "in", "value": ["silent"]}` and `siyu report lifecycle` always agree.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from sqlglot import exp

from siyu.analytics import lifecycle, rfm

LIFECYCLE_STAGES: tuple[str, ...] = tuple(stage.value for stage in lifecycle.LifecycleStage)
REGISTERED_STAGE = lifecycle.LifecycleStage.REGISTERED.value  # the one stage without orders
RFM_CLASSES: tuple[str, ...] = tuple(cls.value for cls in rfm.RfmClass)


def lifecycle_query(
    *, as_of: date, timezone: ZoneInfo, buyers_only: bool = False, from_member_stats: bool = False
) -> tuple[exp.Query, str]:
    """The `(member_id, stage)` query as of a date, and the name of its class column
    (`buyers_only`: without the `registered` members; `from_member_stats`: read the member
    summary; see `lifecycle.lifecycle_sql`)."""
    query = lifecycle.lifecycle_query(
        as_of=as_of, tz=timezone, buyers_only=buyers_only, from_member_stats=from_member_stats
    )
    assert isinstance(query, exp.Query)
    return query, "stage"


def rfm_query(*, as_of: date) -> tuple[exp.Query, str]:
    """The `(member_id, rfm_class, …)` query as of a date, and the name of its class column."""
    query = rfm.rfm_query(as_of=as_of)
    assert isinstance(query, exp.Query)
    return query, "rfm_class"
