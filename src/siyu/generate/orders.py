"""Order lines for one chunk of members: baskets, seasonality, refunds, guests, bad rows.

Decisions:
- 28% of members never order; of buyers 55% buy once, the rest follow a Pareto tail (≤ 150).
- A POS member's first order is on the day they registered (they join at the till).
- Tmall/Douyin orders carry only the buyer's phone when the member has one (the platforms do
  not know our member_no); mini-program orders carry the unionid as well.
- ~3% of orders are refunded: half with every line in status `refunded`, half with a separate
  refund row (next line_no, the order total, a few days later, no category/sku).
- ~3% of orders come from guests: a phone and no member row.
- Malformed lines (negative amount, impossible paid_at, no identity) ~1 in 5,000 plus one of
  each in the first chunk; their order may otherwise look fine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siyu.generate import columns as col
from siyu.generate.catalog import CHANNEL_WEIGHTS, CHANNELS, PRODUCT_WEIGHTS, PRODUCTS
from siyu.generate.members import (
    DOUYIN,
    GUEST_PHONE_BASE,
    MINIPROGRAM,
    POS,
    TMALL,
    WECOM,
    MemberChunk,
)
from siyu.generate.plan import CHUNK_MEMBERS, SECONDS_PER_DAY, STREAM_ORDERS, Plan

ORDER_COLUMNS = (
    "order_id",
    "line_no",
    "member_no",
    "phone",
    "unionid",
    "store_code",
    "channel",
    "paid_at",
    "amount",
    "status",
    "category",
    "sku",
)
MALFORMED_KINDS = ("negative_amount", "bad_paid_at", "no_identity")
BASKET_P = np.array([0.58, 0.25, 0.10, 0.05, 0.02])
REFUND_RATE = 0.03
GUEST_RATE = 0.03


@dataclass(frozen=True)
class OrderChunk:
    rows: dict[str, pa.Array]
    orders: int
    refunded_orders: int
    guest_orders: int
    malformed: dict[str, int]

    def __len__(self) -> int:
        return len(self.rows["order_id"])


@dataclass(frozen=True)
class _Orders:
    """One entry per order (not per line)."""

    member: np.ndarray  # position in the member chunk, -1 for a guest
    channel: np.ndarray
    store: np.ndarray
    seconds: np.ndarray
    with_member_no: np.ndarray
    with_phone: np.ndarray
    with_unionid: np.ndarray


def generate_orders(plan: Plan, chunk: int, members: MemberChunk, first_order: int) -> OrderChunk:
    """Lines of this chunk's orders, numbered from first_order (a running count across chunks)."""
    rng = plan.rng(STREAM_ORDERS, chunk)
    orders = _orders(plan, rng, members)
    basket = rng.choice(len(BASKET_P), size=len(orders.member), p=BASKET_P) + 1
    refunded = rng.random(len(basket)) < REFUND_RATE
    as_row = refunded & (rng.random(len(basket)) < 0.5)
    lines = _lines(plan, rng, chunk, members, orders, basket, first_order)
    refund_rows = _refund_rows(plan, rng, lines, basket, refunded, as_row)
    lines["status"] = pc.if_else(
        pa.array(np.repeat(refunded & ~as_row, basket)), "refunded", "paid"
    )
    rows = {name: pa.concat_arrays([lines[name], refund_rows[name]]) for name in ORDER_COLUMNS}
    # Put each refund row right after its order's lines so the file reads like a ledger.
    order_of = np.concatenate([np.repeat(np.arange(len(basket)), basket), np.flatnonzero(as_row)])
    rows = {
        name: pc.take(arr, pa.array(np.argsort(order_of, kind="stable")))
        for name, arr in rows.items()
    }
    bad = _malformed(rng, len(rows["order_id"]), first_chunk=chunk == 0)
    _apply_malformed(rows, bad)
    return OrderChunk(
        rows=rows,
        orders=len(basket),
        refunded_orders=int(refunded.sum()),
        guest_orders=int((orders.member < 0).sum()),
        malformed={kind: int((bad == k).sum()) for k, kind in enumerate(MALFORMED_KINDS)},
    )


def _orders(plan: Plan, rng: np.random.Generator, members: MemberChunk) -> _Orders:
    n = len(members)
    count = np.where(rng.random(n) < 0.55, 1, 2 + np.minimum(rng.pareto(1.25, size=n) * 2.2, 148))
    count = np.where((rng.random(n) < 0.72) & members.valid, count.astype(np.int64), 0)
    member = np.repeat(np.arange(n), count)
    day = plan.sampler.sample(rng, members.reg_day[member])
    first = np.r_[True, member[1:] != member[:-1]] & (members.channel[member] == POS)
    day[first] = members.reg_day[member[first]]
    guests = rng.binomial(len(member), GUEST_RATE) if len(member) else 0
    member = np.concatenate([member, np.full(guests, -1)])
    day = np.concatenate([day, plan.sampler.sample(rng, np.zeros(guests, dtype=np.int64))])
    channel = _order_channels(rng, members, member)
    store = _order_stores(plan, rng, members, member, channel)
    seconds = plan.start_seconds + day * SECONDS_PER_DAY + plan.seconds_of_day(rng, len(member))
    known = member >= 0
    phone_known = known & members.has_phone[np.maximum(member, 0)]
    platform = (channel == TMALL) | (channel == DOUYIN)
    return _Orders(
        member=member,
        channel=channel,
        store=store,
        seconds=seconds,
        with_member_no=known & ~(platform & phone_known),
        with_phone=~known | (phone_known & (platform | (rng.random(len(member)) < 0.3))),
        with_unionid=known & (channel == MINIPROGRAM) & members.has_unionid[np.maximum(member, 0)],
    )


def _order_channels(
    rng: np.random.Generator, members: MemberChunk, member: np.ndarray
) -> np.ndarray:
    p = np.array(CHANNEL_WEIGHTS) / sum(CHANNEL_WEIGHTS)
    other = rng.choice(len(CHANNELS), size=len(member), p=p)
    own = members.channel[np.maximum(member, 0)]
    channel = np.where((member >= 0) & (rng.random(len(member)) < 0.8), own, other)
    return np.where((member < 0) & (channel == WECOM), POS, channel)  # guests have no WeCom


def _order_stores(
    plan: Plan,
    rng: np.random.Generator,
    members: MemberChunk,
    member: np.ndarray,
    channel: np.ndarray,
) -> np.ndarray:
    home = members.store[np.maximum(member, 0)]
    physical = np.where((member >= 0) & (home < plan.physical_stores), home, -1)
    anywhere = rng.integers(0, plan.physical_stores, size=len(member))
    store = np.where(physical >= 0, physical, anywhere)
    for name in ("miniprogram", "tmall", "douyin"):
        store[channel == CHANNELS.index(name)] = plan.online_store(name)
    return store


def _lines(
    plan: Plan,
    rng: np.random.Generator,
    chunk: int,
    members: MemberChunk,
    orders: _Orders,
    basket: np.ndarray,
    first_order: int,
) -> dict[str, pa.Array]:
    of = np.repeat(np.arange(len(basket)), basket)
    starts = np.cumsum(basket) - basket
    line_no = np.arange(len(of)) - starts[of] + 1
    product = rng.choice(
        len(PRODUCTS), size=len(of), p=np.array(PRODUCT_WEIGHTS) / sum(PRODUCT_WEIGHTS)
    )
    price = np.array([p.price_cents for p in PRODUCTS])[product]
    # Log-normal around list price (promotions, multi-buy); rounded to 0.10 yuan as tills do.
    cents = (np.round(price * rng.lognormal(0.0, 0.35, size=len(of)) / 10) * 10).astype(np.int64)
    member = orders.member[of]
    guest_index = GUEST_PHONE_BASE + chunk * CHUNK_MEMBERS * 4 + np.cumsum(orders.member < 0)[of]
    return {
        "order_id": col.padded(first_order + of + 1, 12, "DTO"),
        "line_no": pc.cast(pa.array(line_no), pa.string()),
        "member_no": col.masked(
            pc.take(members.rows["member_no"], pa.array(np.maximum(member, 0))),
            orders.with_member_no[of],
        ),
        "phone": _phones(plan, members, member, guest_index, orders.with_phone[of]),
        "unionid": col.masked(
            pc.take(members.rows["unionid"], pa.array(np.maximum(member, 0))),
            orders.with_unionid[of],
        ),
        "store_code": col.pick(plan.store_codes, orders.store[of]),
        "channel": col.pick(CHANNELS, orders.channel[of]),
        "paid_at": col.instant(orders.seconds[of]),
        "amount": col.money(cents),
        "category": col.pick([p.category for p in PRODUCTS], product),
        "sku": col.pick([p.sku for p in PRODUCTS], product),
        "_cents": pa.array(cents),
        "_line_no": pa.array(line_no),
        "_seconds": pa.array(orders.seconds[of]),
    }


def _phones(
    plan: Plan, members: MemberChunk, member: np.ndarray, guest_index: np.ndarray, keep: np.ndarray
) -> pa.Array:
    from siyu.generate.members import phone_numbers

    own = pc.take(members.rows["phone"], pa.array(np.maximum(member, 0)))
    guest = phone_numbers(guest_index, plan.seed)
    return col.masked(pc.if_else(pa.array(member >= 0), own, guest), keep)


def _refund_rows(
    plan: Plan,
    rng: np.random.Generator,
    lines: dict[str, pa.Array],
    basket: np.ndarray,
    refunded: np.ndarray,
    as_row: np.ndarray,
) -> dict[str, pa.Array]:
    """One refund row per order in as_row: the order total, a few days after payment."""
    last_line = np.cumsum(basket) - 1
    first_line = last_line - basket + 1
    totals = (
        np.add.reduceat(lines["_cents"].to_numpy(), first_line)
        if len(basket)
        else np.zeros(0, np.int64)
    )
    pick = np.flatnonzero(as_row)
    at = pa.array(first_line[pick])
    end_seconds = plan.start_seconds + plan.sampler.days * SECONDS_PER_DAY - 1
    later = lines["_seconds"].to_numpy()[first_line[pick]] + rng.integers(
        3600, 10 * SECONDS_PER_DAY, size=len(pick)
    )
    none = pa.nulls(len(pick), pa.string())
    return {
        "order_id": pc.take(lines["order_id"], at),
        "line_no": pc.cast(pa.array(basket[pick] + 1), pa.string()),
        "member_no": pc.take(lines["member_no"], at),
        "phone": pc.take(lines["phone"], at),
        "unionid": pc.take(lines["unionid"], at),
        "store_code": pc.take(lines["store_code"], at),
        "channel": pc.take(lines["channel"], at),
        "paid_at": col.instant(np.minimum(later, end_seconds)),
        "amount": col.money(totals[pick]),
        "status": pa.array(["refunded"] * len(pick), pa.string()),
        "category": none,
        "sku": none,
    }


def _malformed(rng: np.random.Generator, n: int, *, first_chunk: bool) -> np.ndarray:
    kind = np.where(rng.random(n) < 1 / 5000, rng.integers(0, len(MALFORMED_KINDS), size=n), -1)
    if first_chunk:
        for k, row in enumerate((41, 67, 97)):
            if row < n:
                kind[row] = k
    return kind


def _apply_malformed(rows: dict[str, pa.Array], bad: np.ndarray) -> None:
    if not (bad >= 0).any():
        return
    negative = pc.if_else(
        pc.starts_with(rows["amount"], "-"), rows["amount"], col.concat("-", rows["amount"])
    )
    rows["amount"] = pc.if_else(pa.array(bad == 0), negative, rows["amount"])
    rows["paid_at"] = pc.if_else(pa.array(bad == 1), "2025-02-30T12:00:00+08:00", rows["paid_at"])
    none = pa.array(bad == 2)
    for name in ("member_no", "phone", "unionid"):
        rows[name] = pc.if_else(none, pa.scalar(None, pa.string()), rows[name])
