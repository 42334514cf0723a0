"""Read-only views of core tables delivery needs (member addresses) and the event sink.

Domains do not import each other's models (STYLE.md), so the few columns read here are
declared as lightweight `sa.table` constructs; the core migration owns the real tables.
"""

from __future__ import annotations

import sqlalchemy as sa

from siyu.db import UTCDateTime

identities = sa.table(
    "identities",
    sa.column("id", sa.BigInteger),
    sa.column("type", sa.String),
    sa.column("value", sa.String),
    sa.column("member_id", sa.BigInteger),
    sa.column("polluted", sa.Boolean),
)

events = sa.table(
    "events",
    sa.column("id", sa.BigInteger),
    sa.column("event_id", sa.String),
    sa.column("type", sa.String),
    sa.column("occurred_at", UTCDateTime()),
    sa.column("member_id", sa.BigInteger),
    sa.column("identities", sa.JSON),
    sa.column("properties", sa.JSON),
    sa.column("received_at", UTCDateTime()),
)
