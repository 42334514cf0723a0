"""Hypothesis properties of OneID (issue #3) over member rows, order lines and events, against
a deliberately simple reference:
the grouping does not depend on input order or batch boundaries, re-importing changes nothing,
a polluted value never joins two member_nos, and a full rebuild agrees. SQLite only: every
example needs a fresh store, which a PostgreSQL clone makes too slow for hundreds of examples."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.bootstrap import Siyu, bootstrap
from siyu.clock import FixedClock
from siyu.config import Settings
from siyu.identity import service as identity_service
from siyu.ingest import service as ingest_service

# SIYU_ONEID_EXAMPLES raises the example count for a long run (default keeps `make test` fast).
EXAMPLES = int(os.environ.get("SIYU_ONEID_EXAMPLES", "60"))
LIMIT = 2  # small pollution limit so examples cross it
PHONES = [f"1380000000{n}" for n in range(4)]
UNIONIDS = [f"oU{n}" for n in range(3)]
MEMBER_NOS = [f"M{n}" for n in range(8)]

member_rows = st.lists(
    st.fixed_dictionaries(
        {
            "member_no": st.sampled_from(MEMBER_NOS),
            "phone": st.sampled_from([*PHONES, ""]),
            "unionid": st.sampled_from([*UNIONIDS, ""]),
        }
    ),
    max_size=8,
    unique_by=lambda row: row["member_no"],
)
order_rows = st.lists(
    st.fixed_dictionaries(
        {
            "order_id": st.sampled_from([f"O{n}" for n in range(5)]),
            "line_no": st.sampled_from(["1", "2"]),
            "member_no": st.sampled_from([*MEMBER_NOS, "", ""]),
            "phone": st.sampled_from([*PHONES, ""]),
            "unionid": st.sampled_from([*UNIONIDS, "", ""]),
        }
    ).filter(lambda row: bool(row["member_no"] or row["phone"] or row["unionid"])),
    max_size=10,
    unique_by=lambda row: (row["order_id"], row["line_no"]),
)
event_rows = st.lists(
    st.fixed_dictionaries(
        {
            "event_id": st.sampled_from([f"E{n}" for n in range(4)]),
            "member_no": st.sampled_from([*MEMBER_NOS, "", ""]),
            "phone": st.sampled_from([*PHONES, ""]),
            "unionid": st.sampled_from([*UNIONIDS, "", ""]),
        }
    ).filter(lambda row: bool(row["member_no"] or row["phone"] or row["unionid"])),
    max_size=4,
    unique_by=lambda row: row["event_id"],
)


def _order(row: dict[str, str]) -> dict[str, str]:
    return {**row, "paid_at": "2026-06-01T12:00:00", "amount": "10.00"}


def _event(row: dict[str, str]) -> dict[str, Any]:
    """The flat test row as an event of DESIGN §4.2: identities nested in an object."""
    identities = {k: row[k] for k in ("member_no", "phone", "unionid") if row[k]}
    return {
        "event_id": row["event_id"],
        "type": "page_view",
        "occurred_at": "2026-06-01T12:00:00",
        "identities": identities,
    }


def reference_groups(
    members: list[dict[str, str]],
    orders: list[dict[str, str]],
    events: list[dict[str, str]] | None = None,
) -> set[frozenset[str]]:
    """Connected components computed the plain way, with pollution counted over everything."""
    records: list[tuple[str, dict[str, str], str | None]]
    records = [(f"member:{m['member_no']}", m, None) for m in members]
    records += [(f"order:{o['order_id']}:{o['line_no']}", o, o["order_id"]) for o in orders]
    records += [(f"event:{e['event_id']}", e, None) for e in events or []]
    values: dict[str, set[str]] = {}
    for _, row, _ in records:
        for kind in ("phone", "unionid"):
            if row.get(kind):
                values.setdefault(f"{kind}:{row[kind]}", set()).update(
                    {row["member_no"]} if row.get("member_no") else set()
                )
    polluted = {value for value, numbers in values.items() if len(numbers) > LIMIT}
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    def links(row: dict[str, str], order_id: str | None) -> set[str]:
        found = {f"member_no:{row['member_no']}"} if row.get("member_no") else set()
        found |= {f"{k}:{row[k]}" for k in ("phone", "unionid") if row.get(k)} - polluted
        return found | ({f"order:{order_id}"} if order_id else set())

    keys = [links(row, order_id) for _, row, order_id in records]
    for i in range(len(records)):
        for j in range(i):
            if keys[i] & keys[j]:
                parent[find(i)] = find(j)
    groups: dict[int, set[str]] = {}
    for i, (name, _, _) in enumerate(records):
        groups.setdefault(find(i), set()).add(name)
    return {frozenset(g) for g in groups.values()}


def stored_groups(siyu: Siyu) -> set[frozenset[str]]:
    with siyu.engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT 'member:' || record_key, member_id FROM member_records "
                "UNION ALL SELECT 'order:' || order_id || ':' || line_no, member_id "
                "FROM order_lines UNION ALL SELECT 'event:' || event_id, member_id FROM events"
            )
        ).all()
    groups: dict[int, set[str]] = {}
    for name, member_id in rows:
        groups.setdefault(member_id, set()).add(name)
    return {frozenset(g) for g in groups.values()}


def _fresh(template: Path, folder: Path) -> Siyu:
    shutil.copy(template, folder / "siyu.db")
    config = Settings(
        environment="test", data_dir=folder, database_url=f"sqlite:///{folder / 'siyu.db'}"
    )
    clock = FixedClock(datetime(2026, 6, 18, 2, tzinfo=UTC))
    return bootstrap(config, clock=clock, migrate=False)


def _feed(siyu: Siyu, items: list[tuple[str, dict[str, Any]]], batch: int) -> int:
    """Import items in order, in batches of consecutive same-kind rows; returns rows accepted."""
    accepted, start = 0, 0
    while start < len(items):
        kind = items[start][0]
        end = start
        while end < len(items) and end - start < batch and items[end][0] == kind:
            end += 1
        result = ingest_service.ingest_records(
            session_factory=siyu.session_factory,
            kind=kind,
            rows=[row for _, row in items[start:end]],
            now=siyu.clock.now(),
            tz=siyu.settings.tz,
            max_member_nos=LIMIT,
        )
        assert result.rejected == 0, result.rejections
        accepted += result.accepted
        start = end
    return accepted


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(members=member_rows, orders=order_rows, events=event_rows, data=st.data())
def test_grouping_matches_the_reference_whatever_the_order_and_batches(
    sqlite_template: Path,
    members: list[dict[str, str]],
    orders: list[dict[str, str]],
    events: list[dict[str, str]],
    data: Any,
) -> None:
    items: list[tuple[str, dict[str, Any]]] = [("members", m) for m in members]
    items += [("orders", _order(o)) for o in orders]
    items += [("events", _event(e)) for e in events]
    shuffled = data.draw(st.permutations(items))
    batch = data.draw(st.integers(min_value=1, max_value=6))
    expected = reference_groups(members, orders, events)
    with tempfile.TemporaryDirectory(prefix="oneid-") as folder:
        siyu = _fresh(sqlite_template, Path(folder))
        try:
            assert _feed(siyu, list(shuffled), batch) == len(items)
            assert stored_groups(siyu) == expected
            assert identity_service.count_members(session_factory=siyu.session_factory) == len(
                expected
            )

            # Re-importing everything changes nothing.
            assert _feed(siyu, list(shuffled), batch) == 0
            assert stored_groups(siyu) == expected

            # A full rebuild agrees with the incremental result.
            identity_service.rebuild_identities(
                session_factory=siyu.session_factory, now=siyu.clock.now(), max_member_nos=LIMIT
            )
            assert stored_groups(siyu) == expected
        finally:
            siyu.close()


@settings(
    max_examples=max(EXAMPLES * 2 // 3, 1),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(members=member_rows, orders=order_rows)
def test_a_polluted_value_never_joins_two_member_nos(
    sqlite_template: Path, members: list[dict[str, str]], orders: list[dict[str, str]]
) -> None:
    items = [("members", m) for m in members] + [("orders", _order(o)) for o in orders]
    with tempfile.TemporaryDirectory(prefix="oneid-") as folder:
        siyu = _fresh(sqlite_template, Path(folder))
        try:
            _feed(siyu, items, 3)
            polluted = {
                (row["type"], row["value"])
                for row in identity_service.list_polluted(session_factory=siyu.session_factory)
            }
            for group in stored_groups(siyu):
                numbers = _member_nos(group, members, orders)
                if len(numbers) > 1:
                    # every member_no in the group is reachable without a polluted value
                    assert reference_groups_without(members, orders, polluted) >= {group}
        finally:
            siyu.close()


def _member_nos(
    group: frozenset[str], members: list[dict[str, str]], orders: list[dict[str, str]]
) -> set[str]:
    rows = {f"member:{m['member_no']}": m for m in members}
    rows |= {f"order:{o['order_id']}:{o['line_no']}": o for o in orders}
    return {rows[name]["member_no"] for name in group if rows[name].get("member_no")}


def reference_groups_without(
    members: list[dict[str, str]], orders: list[dict[str, str]], polluted: set[tuple[str, str]]
) -> set[frozenset[str]]:
    """The reference grouping, forced to ignore exactly the values the store calls polluted."""
    scrub = [{k: ("" if (k, v) in polluted else v) for k, v in row.items()} for row in members]
    scrub_orders = [
        {k: ("" if (k, v) in polluted else v) for k, v in row.items()} for row in orders
    ]
    return reference_groups(scrub, scrub_orders)
