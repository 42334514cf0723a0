"""How the compiler shapes queries that must stay fast at 10M members (issue #4)."""

from __future__ import annotations

from datetime import UTC, datetime

from siyu.segments.compiler import compile_segment, render
from siyu.segments.dsl import parse_definition

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
TEA = {"event": "order_paid", "where": [{"prop": "category", "op": "in", "value": ["tea"]}]}


def _sql(definition: dict[str, object]) -> str:
    query = compile_segment(parse_definition(definition), now=NOW, orders_table="order_totals")
    return render(query, "duckdb")


def test_a_category_filter_reads_the_orders_category_set_not_their_lines() -> None:
    sql = _sql({**TEA, "count": {"op": "gte", "value": 1}})
    assert "ARRAY_CONTAINS(x.categories, 'tea')" in sql and "order_lines" not in sql


def test_a_category_filter_with_another_operator_still_reads_the_lines() -> None:
    contains = {
        "event": "order_paid",
        "where": [{"prop": "category", "op": "contains", "value": "te"}],
    }
    sql = _sql({**contains, "count": {"op": "gte", "value": 1}})
    assert "order_lines" in sql
