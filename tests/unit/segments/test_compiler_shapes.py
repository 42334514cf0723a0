"""How the compiler shapes queries that must stay fast at 10M members (issue #4)."""

from __future__ import annotations

from datetime import UTC, datetime

from siyu.segments.compiler import compile_segment, render
from siyu.segments.dsl import parse_definition

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
VIP = {"tag": "等级:VIP", "op": "has"}
SPENT = {"event": "order_paid", "within_days": 365, "sum": "amount", "op": "gt", "value": 300}
TEA = {"event": "order_paid", "where": [{"prop": "category", "op": "in", "value": ["tea"]}]}


def _sql(definition: dict[str, object]) -> str:
    query = compile_segment(parse_definition(definition), now=NOW, orders_table="order_totals")
    return render(query, "duckdb")


def test_or_of_member_sets_is_one_membership_test_over_their_union() -> None:
    sql = _sql({"any": [VIP, SPENT]})
    assert sql.count(" IN (SELECT") == 1 and "UNION ALL" in sql


def test_member_sets_under_not_stay_separate_two_valued_tests() -> None:
    sql = _sql({"not": {"any": [VIP, SPENT]}})
    assert "UNION" not in sql and sql.count("COALESCE(m.member_id IN") == 2


def test_a_category_filter_reads_the_orders_category_set_not_their_lines() -> None:
    sql = _sql({**TEA, "count": {"op": "gte", "value": 1}})
    assert "ARRAY_CONTAINS(x.categories, 'tea')" in sql and "order_lines" not in sql
