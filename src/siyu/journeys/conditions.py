"""Evaluate a segment-DSL condition for one member, and list an audience, on the operational store.

The segments domain compiles the full DSL to warehouse SQL for whole populations; a journey
branch asks about ONE member at the instant the step runs, which a few indexed queries on the
operational store answer exactly and without waiting for the warehouse sync. Supported here:
all/any/not, attr (members columns and age), tag has/not_has, event with within_days, where,
count and sum (order_paid = one event per non-refunded order). Anything else (lifecycle, rfm,
named segments, group clusters) is refused when the journey is applied, with the path named.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.journeys import sources
from siyu.journeys.errors import JourneyError, JourneyErrorCode

ATTRIBUTES = ("gender", "birthday", "registered_at", "store_code", "channel", "name")


class ConditionEvaluator(Protocol):
    def matches(
        self, *, db_session: Session, member_id: int, dsl: dict[str, Any], now: datetime
    ) -> bool: ...

    def audience(
        self, *, db_session: Session, dsl: dict[str, Any], now: datetime
    ) -> Iterator[int]: ...


def validate(dsl: dict[str, Any], path: str = "condition") -> None:
    """Refuse conditions this evaluator cannot answer, naming where they are."""
    if not dsl:
        return
    if "all" in dsl or "any" in dsl:
        for index, child in enumerate(dsl.get("all") or dsl.get("any") or []):
            validate(child, f"{path}.{'all' if 'all' in dsl else 'any'}[{index}]")
        return
    if "not" in dsl:
        validate(dsl["not"], f"{path}.not")
        return
    if "attr" in dsl and dsl["attr"] in (*ATTRIBUTES, "age"):
        return
    if "tag" in dsl or "event" in dsl:
        return
    raise JourneyError(
        JourneyErrorCode.INVALID_DEFINITION,
        f"{path}: {sorted(dsl)} is not supported in journey conditions "
        "(use attr, tag, event, all/any/not)",
    )


class StoreConditions:
    """The default evaluator, over the operational store."""

    def matches(
        self, *, db_session: Session, member_id: int, dsl: dict[str, Any], now: datetime
    ) -> bool:
        return _match(db_session, member_id, dsl, now)

    def audience(self, *, db_session: Session, dsl: dict[str, Any], now: datetime) -> Iterator[int]:
        m = sources.members
        query = (
            sa.select(m.c.id)
            .where(m.c.merged_into_id.is_(None), m.c.erased_at.is_(None))
            .order_by(m.c.id)
        )
        for (member_id,) in db_session.execute(query):
            if _match(db_session, member_id, dsl, now):
                yield int(member_id)


def _match(db: Session, member_id: int, dsl: dict[str, Any], now: datetime) -> bool:
    if not dsl:
        return True
    if "all" in dsl:
        return all(_match(db, member_id, child, now) for child in dsl["all"])
    if "any" in dsl:
        return any(_match(db, member_id, child, now) for child in dsl["any"])
    if "not" in dsl:
        return not _match(db, member_id, dsl["not"], now)
    if "attr" in dsl:
        return _attr(db, member_id, dsl, now)
    if "tag" in dsl:
        has = _has_tag(db, member_id, str(dsl["tag"]))
        return has if dsl.get("op", "has") == "has" else not has
    if "event" in dsl:
        return _event(db, member_id, dsl, now)
    validate(dsl)
    return False


def _attr(db: Session, member_id: int, dsl: dict[str, Any], now: datetime) -> bool:
    m = sources.members
    name = dsl["attr"]
    column = m.c.birthday if name == "age" else m.c[name]
    value = db.scalar(sa.select(column).where(m.c.id == member_id))
    if name == "age" and value is not None:
        value = _age(value, now.date())
    return compare(value, dsl.get("op", "eq"), dsl.get("value"))


def _age(birthday: date, today: date) -> int:
    return today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))


def compare(actual: Any, op: str, expected: Any) -> bool:
    """The DSL operators (DESIGN §4.4) on one value."""
    if op == "exists":
        return actual not in (None, "")
    if op == "not_exists":
        return actual in (None, "")
    if actual is None:
        return op in ("ne", "not_in")
    if isinstance(actual, Decimal):
        actual = float(actual)
    checks = {
        "eq": lambda: actual == expected,
        "ne": lambda: actual != expected,
        "in": lambda: actual in expected,
        "not_in": lambda: actual not in expected,
        "gt": lambda: actual > expected,
        "gte": lambda: actual >= expected,
        "lt": lambda: actual < expected,
        "lte": lambda: actual <= expected,
        "between": lambda: expected[0] <= actual <= expected[1],
        "contains": lambda: str(expected) in str(actual),
    }
    if op not in checks:
        raise JourneyError(JourneyErrorCode.INVALID_DEFINITION, f"unknown operator {op!r}")
    check: Callable[[], object] = checks[op]
    return bool(check())


def _has_tag(db: Session, member_id: int, tag: str) -> bool:
    group, _, name = tag.partition(":")
    t, g, mt = sources.tags, sources.tag_groups, sources.member_tags
    query = (
        sa.select(mt.c.member_id)
        .join(t, t.c.id == mt.c.tag_id)
        .join(g, g.c.id == t.c.group_id)
        .where(mt.c.member_id == member_id, g.c.name == group, t.c.name == name)
        .limit(1)
    )
    return db.execute(query).first() is not None


def _event(db: Session, member_id: int, dsl: dict[str, Any], now: datetime) -> bool:
    since = now - timedelta(days=int(dsl.get("within_days", 36500)))
    values = (
        _order_amounts(db, member_id, dsl, since, now)
        if dsl["event"] == "order_paid"
        else _events(db, member_id, dsl, since, now)
    )
    if "sum" in dsl:
        return compare(sum(values), dsl.get("op", "gt"), dsl.get("value"))
    count = dsl.get("count", {"op": "gte", "value": 1})
    return compare(len(values), count["op"], count["value"])


def _order_amounts(
    db: Session, member_id: int, dsl: dict[str, Any], since: datetime, now: datetime
) -> list[float]:
    o = sources.order_lines
    rows = db.execute(
        sa.select(o.c.order_id, o.c.amount, o.c.status, o.c.category, o.c.sku).where(
            o.c.member_id == member_id, o.c.paid_at > since, o.c.paid_at <= now
        )
    ).all()
    orders: dict[str, list[Any]] = {}
    for row in rows:
        orders.setdefault(row.order_id, []).append(row)
    amounts = []
    for lines in orders.values():
        if any(line.status == "refunded" for line in lines):
            continue
        if all(_any_line_matches(lines, cond) for cond in dsl.get("where", [])):
            amounts.append(float(sum(line.amount for line in lines)))
    return amounts


def _any_line_matches(lines: list[Any], cond: dict[str, Any]) -> bool:
    return any(
        compare(getattr(line, cond["prop"], None), cond.get("op", "eq"), cond.get("value"))
        for line in lines
    )


def _events(
    db: Session, member_id: int, dsl: dict[str, Any], since: datetime, now: datetime
) -> list[float]:
    e = sources.events
    rows = db.execute(
        sa.select(e.c.properties).where(
            e.c.member_id == member_id,
            e.c.type == dsl["event"],
            e.c.occurred_at > since,
            e.c.occurred_at <= now,
        )
    ).all()
    values = []
    for (properties,) in rows:
        props = properties or {}
        if all(
            compare(props.get(c["prop"]), c.get("op", "eq"), c.get("value"))
            for c in dsl.get("where", [])
        ):
            values.append(float(props.get(dsl.get("sum", ""), 0) or 0))
    return values
