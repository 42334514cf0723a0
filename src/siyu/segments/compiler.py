"""The one segment compiler: a DSL condition tree → `SELECT member_id FROM members WHERE …`.

The query is a SQLGlot expression over the warehouse tables (`warehouse/schema.py`), rendered
for DuckDB or ClickHouse by `render`. Values become literals escaped by SQLGlot; no SQL is
concatenated from strings.

Semantics the SQL and the reference evaluator (`reference.py`) share:
- Every leaf is two-valued: a missing value (NULL) fails every test except `not_exists`, so
  `not` of a condition is exactly the members the condition leaves out.
- The evaluation instant is truncated to whole seconds (ClickHouse `DateTime` literals) and
  compared with naive UTC warehouse timestamps; `within_days: N` is (now − N×24h, now].
- Age is whole years at the evaluation date in the business time zone; it is compiled to a
  birthday range, so no engine's date-difference function decides it.
- An event aggregate whose comparison holds for zero (e.g. `count eq 0`) also matches members
  with no such events: it is compiled as "not among the members for whom it fails".
- Event properties are JSON text; an empty string is a missing value; a numeric `value` makes
  the comparison numeric (non-numeric property values are then missing).
- `order_paid` is one event per non-refunded order (DESIGN §4.4); `category`, `sku`,
  `store_code` and `channel` are the sets of its lines' values: a positive test matches when
  any line matches, `ne`/`not_in`/`not_exists` when no line does; `distinct` counts values
  over all lines of the matching orders; `amount` is the order total.
- Lifecycle and RFM classes come from the analytics definitions (`traits.py`) as of the
  evaluation date.

Performance (issue #4, benchmarks/segments): member conditions are one WHERE over `members`;
each behaviour condition is one GROUP BY … HAVING over the order (or event) table, used as an
uncorrelated semi-join (`member_id IN (…)`, a hash join). Order conditions and the embedded
lifecycle/RFM queries read `orders_table`: the materialised `order_totals` when the caller
knows it is current (`warehouse/order_totals.py`), else the `orders` view, which re-groups
every order line per condition. Category tests (eq, in, exists and their negations) read the
order's `categories` set instead of semi-joining order lines; lifecycle conditions read the
per-member summary `member_order_stats` when the caller says it is current and covers the
evaluation date. A trait used by several conditions is computed once per evaluation, as a CTE.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlglot import exp

from siyu.segments import traits
from siyu.segments.dsl import (
    ORDER_EVENT,
    ORDER_SCALAR_PROPS,
    ORDER_SET_PROPS,
    AllOf,
    AnyOf,
    AttrCondition,
    Comparison,
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
from siyu.segments.errors import SegmentCycleError, SegmentError, SegmentErrorCode
from siyu.warehouse.order_totals import MemberOrderStats

Resolver = Callable[[str], Condition]
DIALECTS = ("duckdb", "clickhouse")
# Category tests answered from the order's `categories` set (the others read order lines).
CATEGORY_SET_OPS = (Op.EQ, Op.IN, Op.EXISTS)
MEMBER_COLUMNS = ("gender", "birthday", "registered_at", "store_code", "channel")
# Attributes that live in a dimension joined by key: attr -> (table, key, column, member key).
DIMENSION_ATTRS = {
    "region": ("stores", "store_code", "region", "store_code"),
    "city": ("stores", "store_code", "city", "store_code"),
    "owner_guide": ("member_owners", "member_id", "owner_guide", "member_id"),
    "owner_store": ("member_owners", "member_id", "owner_store", "member_id"),
}


def evaluation_instant(now: datetime) -> datetime:
    """The instant a segment is evaluated at: UTC, whole seconds."""
    if now.tzinfo is None:
        raise ValueError("the evaluation instant must be timezone-aware")
    return now.astimezone(UTC).replace(microsecond=0)


@dataclass
class CompileContext:
    now: datetime
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    resolve: Resolver | None = None
    orders_table: str = "orders"
    member_stats: MemberOrderStats | None = None
    _stack: list[str] = field(default_factory=list)
    traits: dict[str, exp.Query] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.now = evaluation_instant(self.now)

    @property
    def as_of(self) -> date:
        return self.now.astimezone(self.timezone).date()

    def since(self, days: int) -> datetime:
        return self.now - timedelta(days=days)

    @property
    def reads_member_stats(self) -> bool:
        """Whether lifecycle conditions read the member summary (current, and covering the
        evaluation date) instead of grouping the orders."""
        stats = self.member_stats
        return self.orders_table == "order_totals" and stats is not None and stats.cover(self.as_of)


def compile_segment(
    condition: Condition,
    *,
    now: datetime,
    timezone: ZoneInfo | None = None,
    resolve: Resolver | None = None,
    orders_table: str = "orders",
    member_stats: MemberOrderStats | None = None,
    columns: Sequence[str] = ("member_id",),
) -> exp.Select:
    """The query selecting the member ids (or other `members` columns) of a segment at an
    instant. `orders_table` is `order_totals` when the caller checked it is current, and
    `member_stats` what `order_totals.member_order_stats` said about the member summary."""
    if orders_table not in ("orders", "order_totals"):
        raise SegmentError(f"unknown orders table {orders_table!r}")
    context = CompileContext(
        now=now,
        timezone=timezone or ZoneInfo("Asia/Shanghai"),
        resolve=resolve,
        orders_table=orders_table,
        member_stats=member_stats,
    )
    predicate = _predicate(condition, context)
    selected = [_m(column) for column in columns]
    query = exp.select(*selected).from_(exp.table_("members", alias="m")).where(predicate)
    for name, trait in context.traits.items():
        query = query.with_(name, as_=trait)
    return query


def render(query: exp.Expr, dialect: str) -> str:
    """SQL text of a compiled query for one engine (`duckdb` or `clickhouse`)."""
    if dialect not in DIALECTS:
        raise SegmentError(f"unknown dialect {dialect!r}", code=SegmentErrorCode.UNSUPPORTED)
    if dialect == "clickhouse":
        query = query.transform(_wide_date)
    return query.sql(dialect=dialect)


def _wide_date(node: exp.Expr) -> exp.Expr:
    """ClickHouse's `Date` starts at 1970-01-01 and clamps earlier dates to it, so an age test
    (a birthday bound in the 1960s) would compare with the wrong day: date literals are cast
    to `Date32`, the type the warehouse's date columns have there."""
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.DATE:
        return exp.DataType(this=exp.DataType.Type.DATE32)
    return node


def count_query(query: exp.Select) -> exp.Select:
    return exp.select(exp.Count(this=exp.Star()).as_("n")).from_(query.subquery("segment"))


# --- tree -------------------------------------------------------------------------------------


def _predicate(condition: Condition, context: CompileContext, *, negated: bool = False) -> exp.Expr:
    """The WHERE predicate of a condition. Outside any `not`, a leaf that is NULL filters the
    member out exactly as FALSE would (AND/OR never turn NULL into TRUE), so leaves are left
    three-valued there: `member_id IN (…)` then plans as a semi-join instead of a mark join
    plus COALESCE. Under a `not`, leaves are made two-valued so NOT(NULL) cannot drop rows."""
    if isinstance(condition, AllOf):
        parts = [_predicate(child, context, negated=negated) for child in condition.all]
        return exp.and_(*parts) if parts else exp.true()
    if isinstance(condition, AnyOf):
        parts = [_predicate(child, context, negated=negated) for child in condition.any]
        return exp.or_(*parts) if parts else exp.false()
    if isinstance(condition, NotOf):
        return exp.not_(exp.paren(_predicate(condition.not_, context, negated=True)))
    if isinstance(condition, SegmentReference):
        return _reference(condition.segment, context, negated=negated)
    leaf = _leaf(condition, context)
    return _two_valued(leaf) if negated else leaf


def _leaf(condition: Condition, context: CompileContext) -> exp.Expr:
    if isinstance(condition, AttrCondition):
        return _attribute(condition, context)
    if isinstance(condition, TagCondition):
        tagged = _member_in(
            exp.select("member_id").from_("member_tags").where(_col("tag").eq(_lit(condition.tag)))
        )
        return tagged if condition.op == Op.HAS else exp.not_(tagged)
    if isinstance(condition, EventCondition):
        return _event(condition, context)
    if isinstance(condition, LifecycleCondition):
        # Stages other than `registered` are all buyers': any test naming only those (in or
        # not in) has the same members over the buyers alone, a much cheaper query.
        stages = condition.value if isinstance(condition.value, list) else [condition.value]
        buyers_only = traits.REGISTERED_STAGE not in stages
        query, column = traits.lifecycle_query(
            as_of=context.as_of,
            timezone=context.timezone,
            buyers_only=buyers_only,
            from_member_stats=context.reads_member_stats,
        )
        name = "segment_lifecycle_buyers" if buyers_only else "segment_lifecycle"
        table = _trait_table(name, query, context)
        return _trait(table, column, condition.lifecycle, condition.value)
    if isinstance(condition, RfmCondition):
        query, column = traits.rfm_query(as_of=context.as_of)
        table = _trait_table("segment_rfm", query, context)
        return _trait(table, column, condition.rfm, condition.value)
    if isinstance(condition, GroupClusterCondition):
        clusters = exp.select("member_id").from_("member_group_clusters")
        return _member_in(clusters.where(_col("cluster").eq(_lit(condition.in_group_cluster))))
    if isinstance(condition, CouponCondition):
        return _coupon(condition, context)
    raise SegmentError(
        f"cannot compile {type(condition).__name__}", code=SegmentErrorCode.UNSUPPORTED
    )


def _reference(name: str, context: CompileContext, *, negated: bool) -> exp.Expr:
    if context.resolve is None:
        raise SegmentError(f"segment {name!r} is referenced but no saved segments are available")
    if name in context._stack:
        cycle = " → ".join([*context._stack, name])
        raise SegmentCycleError(f"segment references form a cycle: {cycle}")
    context._stack.append(name)
    try:
        return exp.paren(_predicate(context.resolve(name), context, negated=negated))
    finally:
        context._stack.pop()


# --- attributes -------------------------------------------------------------------------------


def _attribute(condition: AttrCondition, context: CompileContext) -> exp.Expr:
    if condition.within_days is not None:
        column = _m(condition.attr)
        since = _timestamp(context.since(condition.within_days))
        return exp.and_(column > since, column <= _timestamp(context.now))
    assert condition.op is not None  # guaranteed by AttrCondition validation
    if condition.attr == "age":
        return _age(condition.op, condition.value, context.as_of)
    if condition.attr in DIMENSION_ATTRS:
        return _dimension(condition.attr, condition.op, condition.value)
    value = condition.value
    if condition.attr == "registered_at":
        value = _instants(value, context.timezone)
    return _compare(_m(condition.attr), condition.op, value, literal=_literal_for(condition.attr))


def _dimension(attr: str, op: Op, value: Any) -> exp.Expr:
    table, key, column, member_key = DIMENSION_ATTRS[attr]
    if op == Op.NOT_EXISTS:
        present = exp.select(key).from_(table).where(exp.column(column).is_(exp.null()).not_())
        return exp.not_(_two_valued(_m(member_key).isin(query=present)))
    keys = exp.select(key).from_(table).where(_compare(exp.column(column), op, value, literal=_lit))
    return _m(member_key).isin(query=keys)


def _age(op: Op, value: Any, as_of: date) -> exp.Expr:
    """age(op)value as a birthday range: age ≥ a ⇔ birthday ≤ as_of − a years."""
    birthday = _m("birthday")

    def at_least(years: int) -> exp.Expr:
        return birthday <= _date(years_before(as_of, years))

    def below(years: int) -> exp.Expr:
        return birthday > _date(years_before(as_of, years))

    def exactly(years: int) -> exp.Expr:
        return exp.and_(at_least(years), below(years + 1))

    if op in (Op.EXISTS, Op.NOT_EXISTS):
        return _compare(birthday, op, None, literal=_date)
    if op == Op.BETWEEN:
        return exp.and_(at_least(value[0]), below(value[1] + 1))
    if op in (Op.IN, Op.NOT_IN):
        matched = exp.or_(*(exact for exact in map(exactly, value)))
        return (
            matched
            if op == Op.IN
            else exp.and_(birthday.is_(exp.null()).not_(), exp.not_(exp.paren(matched)))
        )
    builders: dict[Op, Callable[[], exp.Expr]] = {
        Op.EQ: lambda: exactly(value),
        Op.NE: lambda: exp.and_(
            birthday.is_(exp.null()).not_(), exp.not_(exp.paren(exactly(value)))
        ),
        Op.GTE: lambda: at_least(value),
        Op.GT: lambda: at_least(value + 1),
        Op.LTE: lambda: below(value + 1),
        Op.LT: lambda: below(value),
    }
    return builders[op]()


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _instants(value: Any, timezone: ZoneInfo) -> Any:
    def to_utc(instant: datetime) -> datetime:
        aware = instant if instant.tzinfo is not None else instant.replace(tzinfo=timezone)
        return aware.astimezone(UTC)

    if isinstance(value, list):
        return [to_utc(item) for item in value]
    return None if value is None else to_utc(value)


# --- events and orders ------------------------------------------------------------------------


def _event(condition: EventCondition, context: CompileContext) -> exp.Expr:
    if condition.event == ORDER_EVENT:
        source, aggregate = _order_source(condition, context)
    else:
        source, aggregate = _event_source(condition, context)
    measure = condition.measure
    test = _compare(aggregate, measure.op, measure.value, literal=_number)
    if holds_for_zero(measure):
        failing = source.group_by(exp.column("member_id", "x")).having(exp.not_(exp.paren(test)))
        return exp.not_(_member_in(failing))
    return _member_in(source.group_by(exp.column("member_id", "x")).having(test))


def holds_for_zero(measure: Comparison) -> bool:
    """Whether the aggregate comparison is true for a member with no matching events."""
    return compare_values(measure.op, 0, measure.value)


def _window(column: exp.Expr, condition: EventCondition, context: CompileContext) -> list[exp.Expr]:
    until = column <= _timestamp(context.now)
    if condition.within_days is None:
        return [until]
    return [column > _timestamp(context.since(condition.within_days)), until]


def _event_source(
    condition: EventCondition, context: CompileContext
) -> tuple[exp.Select, exp.Expr]:
    filters = [
        exp.column("type", "x").eq(_lit(condition.event)),
        exp.column("member_id", "x").is_(exp.null()).not_(),
        *_window(exp.column("occurred_at", "x"), condition, context),
        *(_two_valued(_prop_test(f)) for f in condition.where),
    ]
    source = exp.select(exp.column("member_id", "x")).from_(exp.table_("events", alias="x"))
    source = source.where(exp.and_(*filters))
    if condition.sum is not None:
        total = exp.func(
            "SUM", exp.TryCast(this=_prop(condition.sum), to=exp.DataType.build("DOUBLE"))
        )
        return source, exp.Coalesce(this=total, expressions=[exp.Literal.number(0)])
    if condition.distinct is not None:
        return source, exp.Count(this=exp.Distinct(expressions=[_prop(condition.distinct)]))
    return source, exp.Count(this=exp.Star())


def _prop(name: str) -> exp.Expr:
    path = exp.JSONPath(expressions=[exp.JSONPathRoot(), exp.JSONPathKey(this=name)])
    extracted = exp.JSONExtractScalar(this=exp.column("properties", "x"), expression=path)
    return exp.Nullif(this=extracted, expression=exp.Literal.string(""))


def _prop_test(prop_filter: PropFilter) -> exp.Expr:
    value_of = _prop(prop_filter.prop)
    if prop_filter.numeric:
        value_of = exp.TryCast(this=value_of, to=exp.DataType.build("DOUBLE"))
        return _compare(value_of, prop_filter.op, prop_filter.value, literal=_number)
    return _compare(value_of, prop_filter.op, _as_text(prop_filter.value), literal=_lit)


def _order_source(
    condition: EventCondition, context: CompileContext
) -> tuple[exp.Select, exp.Expr]:
    filters = [
        exp.not_(exp.column("refunded", "x")),
        *_window(exp.column("paid_at", "x"), condition, context),
        *(_two_valued(_order_filter(f, _lines_since(condition, context))) for f in condition.where),
    ]
    orders = exp.table_(context.orders_table, alias="x")
    source = exp.select(exp.column("member_id", "x")).from_(orders)
    source = source.where(exp.and_(*filters))
    if condition.sum is not None:
        total = exp.func("SUM", exp.column("amount", "x"))
        return source, exp.Coalesce(this=total, expressions=[exp.Literal.number(0)])
    if condition.distinct is not None:
        lines = exp.table_("order_lines", alias="l")
        joined = source.join(lines, on=exp.column("order_id", "l").eq(exp.column("order_id", "x")))
        return joined, exp.Count(
            this=exp.Distinct(expressions=[exp.column(condition.distinct, "l")])
        )
    return source, exp.Count(this=exp.Star())


def _lines_since(condition: EventCondition, context: CompileContext) -> exp.Expr | None:
    """Lower bound on the lines worth reading for a windowed order condition: an order's
    `paid_at` is its earliest line's, so every line of an order in the window is in it too."""
    if condition.within_days is None:
        return None
    return exp.column("paid_at") > _timestamp(context.since(condition.within_days))


def _order_filter(prop_filter: PropFilter, lines_since: exp.Expr | None = None) -> exp.Expr:
    if prop_filter.prop == "amount":
        return _compare(
            exp.column("amount", "x"), prop_filter.op, prop_filter.value, literal=_number
        )
    if prop_filter.prop not in ORDER_SET_PROPS:
        props = ", ".join((*ORDER_SCALAR_PROPS, *ORDER_SET_PROPS))
        raise SegmentError(f"order_paid has no property {prop_filter.prop!r}; one of {props}")
    negative = {Op.NE: Op.EQ, Op.NOT_IN: Op.IN, Op.NOT_EXISTS: Op.EXISTS}
    op = negative.get(prop_filter.op, prop_filter.op)
    value = _as_text(prop_filter.value) if not prop_filter.numeric else prop_filter.value
    if prop_filter.prop == "category" and op in CATEGORY_SET_OPS and not prop_filter.numeric:
        found = _has_category(op, value)
    else:
        matching = exp.select("order_id").from_("order_lines")
        test = _compare(exp.column(prop_filter.prop), op, value, literal=_lit)
        matching = matching.where(test if lines_since is None else exp.and_(test, lines_since))
        found = exp.column("order_id", "x").isin(query=matching)
    return exp.not_(found) if prop_filter.op in negative else found


def _has_category(op: Op, value: Any) -> exp.Expr:
    """The positive category test on the order's own `categories` set: no pass over lines."""
    categories = exp.column("categories", "x")
    if op == Op.EXISTS:
        return exp.ArraySize(this=categories) > exp.Literal.number(0)
    wanted = value if isinstance(value, list) else [value]
    tests = [exp.ArrayContains(this=categories, expression=_lit(item)) for item in wanted]
    return exp.paren(exp.or_(*tests)) if tests else exp.false()


# --- traits, coupons --------------------------------------------------------------------------


def _trait_table(name: str, query: exp.Query, context: CompileContext) -> str:
    """Register the analytics query as a CTE of the segment (once), reading `orders_table`."""
    if name not in context.traits:

        def retarget(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Table) and node.name == "orders":
                return exp.table_(context.orders_table, alias=node.alias or None)
            return node

        retargeted = query.transform(retarget) if context.orders_table != "orders" else query
        assert isinstance(retargeted, exp.Query)
        context.traits[name] = retargeted
    return name


def _trait(table: str, column: str, op: Op, value: Any) -> exp.Expr:
    """Members whose class (`column` of the trait CTE `table`) passes the test."""
    names = value if isinstance(value, list) else [value]
    classes = exp.select("member_id").from_(exp.table_(table, alias="t"))
    wanted = exp.column(column, "t").isin(*(_lit(n) for n in names))
    matched = _member_in(classes.where(wanted))
    return matched if op in (Op.EQ, Op.IN) else exp.not_(matched)


def _coupon(condition: CouponCondition, context: CompileContext) -> exp.Expr:
    state, expires_at = exp.column("state"), exp.column("expires_at")
    now = _timestamp(context.now)
    unexpired = exp.or_(expires_at.is_(exp.null()), expires_at > now)
    tests: list[exp.Expr] = []
    if condition.coupon != "*":
        tests.append(exp.column("template_code").eq(_lit(condition.coupon)))
    if condition.state == CouponState.AVAILABLE:
        tests += [state.eq(_lit("available")), exp.paren(unexpired)]
        if condition.expires_within_days is not None:
            tests.append(
                expires_at
                <= _timestamp(context.now + timedelta(days=condition.expires_within_days))
            )
    elif condition.state == CouponState.EXPIRED:
        lapsed = exp.and_(state.eq(_lit("available")), expires_at <= now)
        tests.append(exp.paren(exp.or_(state.eq(_lit("expired")), lapsed)))
    else:
        tests.append(state.eq(_lit(str(condition.state))))
    return _member_in(exp.select("member_id").from_("member_coupons").where(exp.and_(*tests)))


# --- comparisons and literals -----------------------------------------------------------------


def _compare(
    column: exp.Expr, op: Op, value: Any, *, literal: Callable[[Any], exp.Expr]
) -> exp.Expr:
    if op == Op.EXISTS:
        return column.is_(exp.null()).not_()
    if op == Op.NOT_EXISTS:
        return column.is_(exp.null())
    if op == Op.BETWEEN:
        return exp.and_(column >= literal(value[0]), column <= literal(value[1]))
    if op in (Op.IN, Op.NOT_IN):
        found = column.isin(*(literal(item) for item in value))
        return found if op == Op.IN else exp.and_(column.is_(exp.null()).not_(), exp.not_(found))
    if op == Op.CONTAINS:
        return exp.StrPosition(this=column, substr=literal(value)) > exp.Literal.number(0)
    binary: dict[Op, Callable[[exp.Expr, exp.Expr], exp.Expr]] = {
        Op.EQ: lambda a, b: a.eq(b),
        Op.NE: lambda a, b: a.neq(b),
        Op.GT: lambda a, b: a > b,
        Op.GTE: lambda a, b: a >= b,
        Op.LT: lambda a, b: a < b,
        Op.LTE: lambda a, b: a <= b,
    }
    if op not in binary:
        raise SegmentError(
            f"operator `{op}` cannot compare values", code=SegmentErrorCode.UNSUPPORTED
        )
    return binary[op](column, literal(value))


def attribute_test(condition: AttrCondition, *, now: datetime, timezone: ZoneInfo) -> exp.Expr:
    """The WHERE test of one attribute leaf over `members AS m` (the bitmap index applies a
    birthday or age test to its indexed birthdays, segments/bitmaps.py)."""
    return _attribute(condition, CompileContext(now=now, timezone=timezone))


def value_test(column: exp.Expr, op: Op, value: Any) -> exp.Expr:
    """The SQL test of a text value, as attribute conditions apply it (the bitmap index
    applies it to its indexed values, segments/bitmaps.py)."""
    return _compare(column, op, value, literal=_lit)


def compare_values(op: Op, left: Any, right: Any) -> bool:
    """The same comparison in Python, for aggregates (never missing) and the reference."""
    if op == Op.BETWEEN:
        return bool(right[0] <= left <= right[1])
    if op == Op.IN:
        return left in right
    if op == Op.NOT_IN:
        return left not in right
    if op == Op.CONTAINS:
        return str(right) in str(left)
    table: dict[Op, Callable[[Any, Any], bool]] = {
        Op.EQ: lambda a, b: bool(a == b),
        Op.NE: lambda a, b: bool(a != b),
        Op.GT: lambda a, b: bool(a > b),
        Op.GTE: lambda a, b: bool(a >= b),
        Op.LT: lambda a, b: bool(a < b),
        Op.LTE: lambda a, b: bool(a <= b),
    }
    return table[op](left, right)


def _literal_for(attr: str) -> Callable[[Any], exp.Expr]:
    if attr == "birthday":
        return _date
    if attr == "registered_at":
        return _timestamp
    return _lit


def _lit(value: Any) -> exp.Expr:
    if isinstance(value, bool):
        raise SegmentError("boolean values are not comparable here")
    if isinstance(value, int | float | Decimal):
        return _number(value)
    return exp.Literal.string(str(value))


def _number(value: Any) -> exp.Expr:
    # Decimal literals keep cent amounts exact against DECIMAL columns on both engines.
    text = format(Decimal(str(value)).quantize(Decimal("0.000001")), "f")
    return exp.cast(exp.Literal.string(text), exp.DataType.build("DECIMAL(38, 6)"))


def _date(value: date) -> exp.Expr:
    return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))


def _timestamp(value: datetime) -> exp.Expr:
    naive = value.astimezone(UTC).replace(tzinfo=None, microsecond=0)
    return exp.cast(exp.Literal.string(naive.isoformat(sep=" ")), exp.DataType.build("TIMESTAMP"))


def _as_text(value: Any) -> Any:
    return [str(v) for v in value] if isinstance(value, list) else str(value)


def _two_valued(predicate: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=predicate, expressions=[exp.false()])


def _member_in(query: exp.Select) -> exp.Expr:
    return _m("member_id").isin(query=query)


def _m(name: str) -> exp.Column:
    return exp.column(name, "m")


def _col(name: str) -> exp.Column:
    return exp.column(name)


def member_columns() -> Sequence[str]:
    return MEMBER_COLUMNS
