"""Read views of core tables the engine needs (members, events, orders, tags, identities).

Domains do not import each other's models (STYLE.md), so the columns read here are declared
as lightweight `sa.table` constructs; the core migration owns the real tables.
"""

from __future__ import annotations

import sqlalchemy as sa

from siyu.db import UTCDateTime

members = sa.table(
    "members",
    sa.column("id", sa.BigInteger),
    sa.column("merged_into_id", sa.BigInteger),
    sa.column("name", sa.String),
    sa.column("gender", sa.String),
    sa.column("birthday", sa.Date),
    sa.column("registered_at", UTCDateTime()),
    sa.column("store_code", sa.String),
    sa.column("channel", sa.String),
    sa.column("erased_at", UTCDateTime()),
)

events = sa.table(
    "events",
    sa.column("id", sa.BigInteger),
    sa.column("event_id", sa.String),
    sa.column("type", sa.String),
    sa.column("occurred_at", UTCDateTime()),
    sa.column("member_id", sa.BigInteger),
    sa.column("properties", sa.JSON),
)

order_lines = sa.table(
    "order_lines",
    sa.column("id", sa.BigInteger),
    sa.column("order_id", sa.String),
    sa.column("member_id", sa.BigInteger),
    sa.column("paid_at", UTCDateTime()),
    sa.column("amount", sa.Numeric),
    sa.column("status", sa.String),
    sa.column("category", sa.String),
    sa.column("sku", sa.String),
)

tag_groups = sa.table(
    "tag_groups",
    sa.column("id", sa.BigInteger),
    sa.column("name", sa.String),
    sa.column("exclusive", sa.Boolean),
    sa.column("created_at", UTCDateTime()),
)
tags = sa.table(
    "tags",
    sa.column("id", sa.BigInteger),
    sa.column("group_id", sa.BigInteger),
    sa.column("name", sa.String),
    sa.column("created_at", UTCDateTime()),
)
member_tags = sa.table(
    "member_tags",
    sa.column("member_id", sa.BigInteger),
    sa.column("tag_id", sa.BigInteger),
    sa.column("source", sa.String),
    sa.column("tagged_by", sa.String),
    sa.column("tagged_at", UTCDateTime()),
)

segments = sa.table("segments", sa.column("id", sa.BigInteger), sa.column("name", sa.String))
segment_snapshots = sa.table(
    "segment_snapshots",
    sa.column("segment_id", sa.BigInteger),
    sa.column("taken_at", UTCDateTime()),
    sa.column("entered", sa.LargeBinary),
    sa.column("exited", sa.LargeBinary),
)
