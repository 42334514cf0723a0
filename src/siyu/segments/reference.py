"""A deliberately simple Python evaluator of the segment DSL, used only by tests.

It walks the condition tree member by member over plain rows (the warehouse tables as lists of
dicts) and shares no code with the compiler except the value comparison on plain Python values.
Compiled SQL must return exactly the set this returns (see compiler.py for the semantics).
Lifecycle and RFM are recomputed here from DESIGN §4.5 as an independent check of the SQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from siyu.segments.compiler import DIMENSION_ATTRS, compare_values, evaluation_instant
from siyu.segments.dsl import (
    ORDER_EVENT,
    AllOf,
    AnyOf,
    AttrCondition,
    Condition,
    CouponCondition,
    CouponState,
    EventCondition,
    GroupClusterCondition,
    LifecycleCondition,
    NotOf,
    Op,
    PropFilter,
    RfmCondition,
    SegmentReference,
    TagCondition,
)

Row = dict[str, Any]


@dataclass
class Dataset:
    """Warehouse rows; instants are naive UTC like the warehouse's."""

    members: list[Row] = field(default_factory=list)
    order_lines: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)
    member_tags: list[Row] = field(default_factory=list)
    stores: list[Row] = field(default_factory=list)
    member_owners: list[Row] = field(default_factory=list)
    member_group_clusters: list[Row] = field(default_factory=list)
    member_coupons: list[Row] = field(default_factory=list)


@dataclass
class _Context:
    data: Dataset
    now: datetime  # naive UTC
    as_of: date
    timezone: ZoneInfo
    resolve: Callable[[str], Condition] | None


def evaluate(
    condition: Condition,
    *,
    data: Dataset,
    now: datetime,
    timezone: ZoneInfo | None = None,
    resolve: Callable[[str], Condition] | None = None,
) -> set[int]:
    """Member ids in the segment at `now`, computed row by row."""
    instant = evaluation_instant(now)
    tz = timezone or ZoneInfo("Asia/Shanghai")
    context = _Context(
        data, instant.replace(tzinfo=None), instant.astimezone(tz).date(), tz, resolve
    )
    return {m["member_id"] for m in data.members if _holds(condition, m, context)}


def _holds(condition: Condition, member: Row, context: _Context) -> bool:
    if isinstance(condition, AllOf):
        return all(_holds(c, member, context) for c in condition.all)
    if isinstance(condition, AnyOf):
        return any(_holds(c, member, context) for c in condition.any)
    if isinstance(condition, NotOf):
        return not _holds(condition.not_, member, context)
    if isinstance(condition, SegmentReference):
        assert context.resolve is not None
        return _holds(context.resolve(condition.segment), member, context)
    if isinstance(condition, AttrCondition):
        return _attribute(condition, member, context)
    member_id = member["member_id"]
    if isinstance(condition, TagCondition):
        tagged = any(
            r["member_id"] == member_id and r["tag"] == condition.tag
            for r in context.data.member_tags
        )
        return tagged if condition.op == Op.HAS else not tagged
    if isinstance(condition, GroupClusterCondition):
        rows = context.data.member_group_clusters
        return any(
            r["member_id"] == member_id and r["cluster"] == condition.in_group_cluster for r in rows
        )
    if isinstance(condition, CouponCondition):
        return any(
            _coupon_matches(condition, r, context)
            for r in context.data.member_coupons
            if r["member_id"] == member_id
        )
    if isinstance(condition, EventCondition):
        return _event(condition, member_id, context)
    if isinstance(condition, LifecycleCondition):
        return _class_test(
            lifecycle_stages(context.data, context.as_of).get(member_id),
            condition.lifecycle,
            condition.value,
        )
    if isinstance(condition, RfmCondition):
        return _class_test(
            rfm_classes(context.data, context.as_of).get(member_id), condition.rfm, condition.value
        )
    raise TypeError(condition)


def _test(value: Any, op: Op, expected: Any) -> bool:
    """A leaf test on a possibly missing value: missing fails all but `not_exists`."""
    if op == Op.EXISTS:
        return value is not None
    if op == Op.NOT_EXISTS:
        return value is None
    if value is None:
        return False
    return compare_values(op, value, expected)


def _attribute(condition: AttrCondition, member: Row, context: _Context) -> bool:
    if condition.attr in DIMENSION_ATTRS:
        value = _dimension_value(condition.attr, member, context.data)
    elif condition.attr == "age":
        birthday = member.get("birthday")
        value = None if birthday is None else _age(birthday, context.as_of)
    else:
        value = member.get(condition.attr)
    if condition.within_days is not None:
        return (
            value is not None
            and context.now - timedelta(days=condition.within_days) < value <= context.now
        )
    assert condition.op is not None
    expected = condition.value
    if condition.attr == "registered_at":
        expected = _naive_utc(expected, context.timezone)
    return _test(value, condition.op, expected)


def _dimension_value(attr: str, member: Row, data: Dataset) -> Any:
    table, key, column, member_key = DIMENSION_ATTRS[attr]
    own = member.get(member_key)
    rows = [r for r in getattr(data, table) if own is not None and r[key] == own]
    return rows[0].get(column) if rows else None


def _age(birthday: date, as_of: date) -> int:
    return as_of.year - birthday.year - ((as_of.month, as_of.day) < (birthday.month, birthday.day))


def _naive_utc(value: Any, timezone: ZoneInfo) -> Any:
    if isinstance(value, list):
        return [_naive_utc(v, timezone) for v in value]
    if value is None:
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=timezone)
    return aware.astimezone(UTC).replace(tzinfo=None)


def _coupon_matches(condition: CouponCondition, row: Row, context: _Context) -> bool:
    if condition.coupon != "*" and row["template_code"] != condition.coupon:
        return False
    expires_at, now = row.get("expires_at"), context.now
    lapsed = row["state"] == "available" and expires_at is not None and expires_at <= now
    if condition.state == CouponState.EXPIRED:
        return row["state"] == "expired" or lapsed
    if condition.state == CouponState.REDEEMED:
        return bool(row["state"] == "redeemed")
    if row["state"] != "available" or lapsed:
        return False
    if condition.expires_within_days is None:
        return True
    return expires_at is not None and expires_at <= now + timedelta(
        days=condition.expires_within_days
    )


def _in_window(instant: datetime, condition: EventCondition, context: _Context) -> bool:
    if instant > context.now:
        return False
    return condition.within_days is None or instant > context.now - timedelta(
        days=condition.within_days
    )


def _event(condition: EventCondition, member_id: int, context: _Context) -> bool:
    if condition.event == ORDER_EVENT:
        orders = _matching_orders(condition, member_id, context)
        count = len(orders)
        values = {
            p: [v for o in orders for v in o["lines"][p] if v is not None] for p in _LINE_PROPS
        }
        total: Any = sum((o["amount"] for o in orders), Decimal(0))
    else:
        events = _matching_events(condition, member_id, context)
        count = len(events)
        props = [_props(e) for e in events]
        values = {p: [e[p] for e in props if p in e] for p in {k for e in props for k in e}}
        numbers = (_number(v) for v in values.get(condition.sum or "", []))
        total = sum((n for n in numbers if n is not None), 0.0)
    if condition.sum is not None:
        aggregate: Any = total
    elif condition.distinct is not None:
        aggregate = len(set(values.get(condition.distinct, [])))
    else:
        aggregate = count
    measure = condition.measure
    return compare_values(measure.op, aggregate, measure.value)


_LINE_PROPS = ("category", "sku", "store_code", "channel")


def _matching_orders(condition: EventCondition, member_id: int, context: _Context) -> list[Row]:
    return [
        o
        for o in _orders(context.data)
        if o["member_id"] == member_id
        and not o["refunded"]
        and _in_window(o["paid_at"], condition, context)
        and all(_order_filter(f, o) for f in condition.where)
    ]


def _matching_events(condition: EventCondition, member_id: int, context: _Context) -> list[Row]:
    return [
        e
        for e in context.data.events
        if e["member_id"] == member_id
        and e["type"] == condition.event
        and _in_window(e["occurred_at"], condition, context)
        and all(_prop_filter(f, _props(e)) for f in condition.where)
    ]


def _props(event: Row) -> dict[str, str]:
    raw = json.loads(event.get("properties") or "{}")
    return {k: _text(v) for k, v in raw.items() if _text(v) != ""}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _number(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _prop_filter(prop_filter: PropFilter, props: dict[str, str]) -> bool:
    raw = props.get(prop_filter.prop)
    if prop_filter.numeric:
        return _test(_number(raw), prop_filter.op, prop_filter.value)
    expected = (
        [str(v) for v in prop_filter.value]
        if isinstance(prop_filter.value, list)
        else prop_filter.value
    )
    return _test(
        raw,
        prop_filter.op,
        None if expected is None else expected if isinstance(expected, list) else str(expected),
    )


def _order_filter(prop_filter: PropFilter, order: Row) -> bool:
    if prop_filter.prop == "amount":
        return _test(order["amount"], prop_filter.op, _decimal(prop_filter.value))
    negative = {Op.NE: Op.EQ, Op.NOT_IN: Op.IN, Op.NOT_EXISTS: Op.EXISTS}
    op = negative.get(prop_filter.op, prop_filter.op)
    expected = prop_filter.value
    if not prop_filter.numeric and expected is not None:
        expected = [str(v) for v in expected] if isinstance(expected, list) else str(expected)
    any_line = any(_test(v, op, expected) for v in order["lines"][prop_filter.prop])
    return not any_line if prop_filter.op in negative else any_line


def _decimal(value: Any) -> Any:
    if isinstance(value, list):
        return [Decimal(str(v)) for v in value]
    return None if value is None else Decimal(str(value))


def _orders(data: Dataset) -> list[Row]:
    """The `orders` view by hand: one row per order_id, refunded if any line is."""
    grouped: dict[str, list[Row]] = {}
    for line in data.order_lines:
        grouped.setdefault(line["order_id"], []).append(line)
    orders = []
    for order_id, lines in grouped.items():
        props = ("category", "sku", "store_code", "channel")
        orders.append(
            {
                "order_id": order_id,
                "member_id": lines[0]["member_id"],
                "paid_at": min(line["paid_at"] for line in lines),
                "paid_date": min(line["paid_date"] for line in lines),
                "amount": sum((Decimal(str(line["amount"])) for line in lines), Decimal(0)),
                "refunded": any(line["status"] == "refunded" for line in lines),
                "lines": {p: [line.get(p) for line in lines] for p in props},
            }
        )
    return orders


def _class_test(value: str | None, op: Op, expected: Any) -> bool:
    names = expected if isinstance(expected, list) else [expected]
    inside = value is not None and value in names
    return inside if op in (Op.EQ, Op.IN) else not inside


def _paid_orders(data: Dataset, as_of: date) -> list[Row]:
    return [o for o in _orders(data) if not o["refunded"] and o["paid_date"] <= as_of]


def lifecycle_stages(data: Dataset, as_of: date) -> dict[int, str]:
    """DESIGN §4.5 stages for members registered by the as-of day or having orders."""
    orders = _paid_orders(data, as_of)
    end_of_day = datetime.combine(
        as_of + timedelta(days=1), datetime.min.time(), tzinfo=ZoneInfo("Asia/Shanghai")
    )
    cutoff = end_of_day.astimezone(UTC).replace(tzinfo=None)
    known = {
        m["member_id"]
        for m in data.members
        if m.get("registered_at") is None or m["registered_at"] < cutoff
    }
    known |= {o["member_id"] for o in orders}
    stages = {}
    for member_id in known:
        days = [(as_of - o["paid_date"]).days for o in orders if o["member_id"] == member_id]
        if not days:
            stages[member_id] = "registered"
        elif min(days) >= 365:
            stages[member_id] = "churned"
        elif min(days) >= 90:
            stages[member_id] = "silent"
        elif len(days) == 1:
            stages[member_id] = "introduced"
        else:
            stages[member_id] = "mature" if sum(d < 365 for d in days) >= 4 else "growing"
    return stages


def rfm_classes(data: Dataset, as_of: date) -> dict[int, str]:
    """DESIGN §4.5 eight classes over members with an order in the last 365 days."""
    window = [o for o in _paid_orders(data, as_of) if (as_of - o["paid_date"]).days < 365]
    stats: dict[int, list[Any]] = {}
    for order in window:
        r_f_m = stats.setdefault(order["member_id"], [10**9, 0, Decimal(0)])
        r_f_m[0] = min(r_f_m[0], (as_of - order["paid_date"]).days)
        r_f_m[1] += 1
        r_f_m[2] += order["amount"]
    n = len(stats)
    sums = [sum(s[i] for s in stats.values()) for i in range(3)]
    classes = {}
    for member_id, (r, f, m) in stats.items():
        high_r, high_f, high_m = r * n < sums[0], f * n > sums[1], m * n > sums[2]
        kind = {
            (True, True): "value",
            (True, False): "develop",
            (False, True): "retain",
            (False, False): "winback",
        }
        classes[member_id] = f"{'important' if high_m else 'general'}_{kind[(high_r, high_f)]}"
    return classes
