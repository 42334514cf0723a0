"""A deliberately simple, independent pure-Python reading of DESIGN §4.5, to check the SQL.

No SQL, no cleverness: loops over plain rows, exactly as the design text is phrased.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

STAGES = ["registered", "introduced", "growing", "mature", "silent", "churned"]
CLASSES = [
    "important_value",
    "important_develop",
    "important_retain",
    "important_winback",
    "general_value",
    "general_develop",
    "general_retain",
    "general_winback",
]


@dataclass(frozen=True)
class Order:
    member_id: int
    day: date
    amount: Decimal


def orders_of(lines: list[tuple[str, int, date, Decimal, str]], as_of: date) -> list[Order]:
    """Lines (order_id, member_id, paid_date, amount, status) → paid, non-refunded orders."""
    by_id: dict[str, list[tuple[str, int, date, Decimal, str]]] = defaultdict(list)
    for line in lines:
        by_id[line[0]].append(line)
    result = []
    for order_lines in by_id.values():
        if any(line[4] == "refunded" for line in order_lines):
            continue
        day = min(line[2] for line in order_lines)
        if day > as_of:
            continue
        total = sum((line[3] for line in order_lines), Decimal(0))
        result.append(Order(order_lines[0][1], day, total))
    return result


def lifecycle(
    members: dict[int, datetime | None], orders: list[Order], as_of: date, end_utc: datetime
) -> dict[str, int]:
    per: dict[int, list[int]] = defaultdict(list)
    for order in orders:
        per[order.member_id].append((as_of - order.day).days)
    known = {m for m, at in members.items() if at is None or at < end_utc} | set(per)
    counts = dict.fromkeys(STAGES, 0)
    for member in known:
        ds = per.get(member, [])
        if not ds:
            stage = "registered"
        elif min(ds) >= 365:
            stage = "churned"
        elif min(ds) >= 90:
            stage = "silent"
        elif len(ds) == 1:
            stage = "introduced"
        elif len([d for d in ds if d < 365]) >= 4:
            stage = "mature"
        else:
            stage = "growing"
        counts[stage] += 1
    return counts


def rfm(orders: list[Order], as_of: date) -> tuple[int, dict[str, int]]:
    r: dict[int, int] = {}
    f: dict[int, int] = defaultdict(int)
    m: dict[int, Decimal] = defaultdict(Decimal)
    for order in orders:
        d = (as_of - order.day).days
        if d < 365:
            r[order.member_id] = min(r.get(order.member_id, d), d)
            f[order.member_id] += 1
            m[order.member_id] += order.amount
    n = len(r)
    counts = dict.fromkeys(CLASSES, 0)
    if n == 0:
        return 0, counts
    mean_r = Decimal(sum(r.values())) / n
    mean_f = Decimal(sum(f.values())) / n
    mean_m = sum(m.values(), Decimal(0)) / n
    for member in r:
        high_r = r[member] < mean_r
        high_f = f[member] > mean_f
        high_m = m[member] > mean_m
        kind = {(True, True): "value", (True, False): "develop"}.get((high_r, high_f))
        kind = kind or {(False, True): "retain", (False, False): "winback"}[(high_r, high_f)]
        counts[f"{'important' if high_m else 'general'}_{kind}"] += 1
    return n, counts


def retention(orders: list[Order], as_of: date) -> list[dict[str, object]]:
    def month_index(day: date) -> int:
        return day.year * 12 + day.month - 1

    first: dict[int, int] = {}
    months: dict[int, set[int]] = defaultdict(set)
    for order in orders:
        idx = month_index(order.day)
        first[order.member_id] = min(first.get(order.member_id, idx), idx)
        months[order.member_id].add(idx)
    last_ended = month_index(as_of + timedelta(days=1)) - 1
    cohorts = []
    for cohort in sorted(set(first.values())):
        members = [m for m, idx in first.items() if idx == cohort]
        shares = []
        for k in range(1, 13):
            if cohort + k > last_ended:
                break
            back = len([m for m in members if cohort + k in months[m]])
            shares.append(round(back / len(members), 4))
        year, month = divmod(cohort, 12)
        cohorts.append(
            {"month": f"{year:04d}-{month + 1:02d}", "size": len(members), "retention": shares}
        )
    return cohorts


def repurchase(orders: list[Order], as_of: date) -> tuple[int, int]:
    count: dict[int, int] = defaultdict(int)
    for order in orders:
        if (as_of - order.day).days < 365:
            count[order.member_id] += 1
    return len(count), len([c for c in count.values() if c >= 2])
