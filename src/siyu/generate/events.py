"""Behaviour events of members with a digital identity (mini-program, WeCom, unionid).

Decisions: an active member emits a log-normal number of events (median ~4, heavy tail);
30% of digital members never open the mini-program after registering. Identities name what
the front end knows (openid/unionid, or external_userid); ~10% also carry the member_no after
login. Malformed events (~1 in 5,000 plus one each in the first chunk) have no identity or an
impossible occurred_at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siyu.generate import columns as col
from siyu.generate.catalog import (
    COUPONS,
    EVENT_TYPES,
    EVENT_WEIGHTS,
    PAGES,
    PRODUCTS,
    SHARE_TARGETS,
)
from siyu.generate.members import MemberChunk
from siyu.generate.plan import SECONDS_PER_DAY, STREAM_EVENTS, Plan

EVENT_FIELDS = ("event_id", "type", "occurred_at", "identities", "properties")
MALFORMED_KINDS = ("no_identity", "bad_occurred_at")


@dataclass(frozen=True)
class EventChunk:
    lines: pa.Array  # one JSON object per event
    malformed: dict[str, int]

    def __len__(self) -> int:
        return len(self.lines)


def generate_events(plan: Plan, chunk: int, members: MemberChunk, first_event: int) -> EventChunk:
    rng = plan.rng(STREAM_EVENTS, chunk)
    digital = members.valid & (
        pc.is_valid(members.rows["openid"]).to_numpy(zero_copy_only=False)
        | pc.is_valid(members.rows["external_userid"]).to_numpy(zero_copy_only=False)
        | members.has_unionid
    )
    active = digital & (rng.random(len(members)) < 0.7)
    count = np.where(active, np.minimum(rng.lognormal(1.4, 1.0, size=len(members)), 400), 0).astype(
        np.int64
    )
    member = np.repeat(np.arange(len(members)), count)
    n = len(member)
    day = plan.sampler.sample(rng, members.reg_day[member])
    seconds = plan.start_seconds + day * SECONDS_PER_DAY + plan.seconds_of_day(rng, n)
    kind = rng.choice(len(EVENT_TYPES), size=n, p=np.array(EVENT_WEIGHTS) / sum(EVENT_WEIGHTS))
    bad = np.where(rng.random(n) < 1 / 5000, rng.integers(0, len(MALFORMED_KINDS), size=n), -1)
    if chunk == 0:
        for k, row in enumerate((53, 89)):
            if row < n:
                bad[row] = k
    identities = _identities(rng, members, member, bad)
    occurred = pc.if_else(pa.array(bad == 1), "2025-13-45T99:00:00+08:00", col.instant(seconds))
    lines = col.json_object(
        {
            "event_id": col.json_string(col.padded(first_event + np.arange(n) + 1, 12, "EV")),
            "type": col.json_string(col.pick(EVENT_TYPES, kind)),
            "occurred_at": col.json_string(occurred),
            "identities": identities,
            "properties": _properties(rng, kind),
        }
    )
    return EventChunk(
        lines=lines, malformed={k: int((bad == i).sum()) for i, k in enumerate(MALFORMED_KINDS)}
    )


def _identities(
    rng: np.random.Generator, members: MemberChunk, member: np.ndarray, bad: np.ndarray
) -> pa.Array:
    at = pa.array(member)
    login = pa.array(rng.random(len(member)) < 0.1)
    fields = {
        "member_no": col.json_string(
            col.masked(pc.take(members.rows["member_no"], at), login.to_numpy(zero_copy_only=False))
        ),
        "unionid": col.json_string(pc.take(members.rows["unionid"], at)),
        "openid": col.json_string(pc.take(members.rows["openid"], at)),
        "external_userid": col.json_string(pc.take(members.rows["external_userid"], at)),
    }
    if (bad == 0).any():
        none = pa.array(bad == 0)
        fields = {
            name: pc.if_else(none, pa.scalar(None, pa.string()), value)
            for name, value in fields.items()
        }
    return col.json_object(fields)


def _properties(rng: np.random.Generator, kind: np.ndarray) -> pa.Array:
    """Type-specific properties, built per type on that type's rows only, then put back in order."""
    order = np.argsort(kind, kind="stable")
    sizes = np.bincount(kind, minlength=len(EVENT_TYPES))
    parts = [_properties_of(rng, k, int(size)) for k, size in enumerate(sizes)]
    stacked = pa.concat_arrays(parts)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return pc.take(stacked, pa.array(inverse))


def _properties_of(rng: np.random.Generator, kind: int, n: int) -> pa.Array:
    sku = col.json_string(
        col.pick([p.sku for p in PRODUCTS], rng.integers(0, len(PRODUCTS), size=n))
    )
    page = col.json_string(col.pick(PAGES, rng.integers(0, len(PAGES), size=n)))
    name = EVENT_TYPES[kind]
    if name == "page_view":
        return col.json_object({"page": page, "sku": col.masked(sku, rng.random(n) < 0.6)})
    if name == "sign_in":
        return col.json_object(
            {"streak": pc.cast(pa.array(rng.geometric(0.35, size=n)), pa.string())}
        )
    if name == "coupon_view":
        return col.json_object(
            {"coupon_id": col.json_string(col.pick(COUPONS, rng.integers(0, len(COUPONS), size=n)))}
        )
    if name == "favourite":
        return col.json_object({"sku": sku})
    if name == "share":
        return col.json_object(
            {
                "target": col.json_string(col.pick(SHARE_TARGETS, rng.integers(0, 3, size=n))),
                "page": page,
            }
        )
    return col.json_object(
        {"sku": sku, "quantity": pc.cast(pa.array(rng.integers(1, 4, size=n)), pa.string())}
    )
