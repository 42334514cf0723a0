"""The segment DSL (DESIGN §4.4): Pydantic models of the JSON tree and its validation.

`parse_definition(data)` turns JSON into a typed condition tree or raises `SegmentDefinitionError`
whose problems name the JSON path, e.g. `$.all[2].within_days: must be a positive integer`.

Decisions where DESIGN §4.4 is silent:
- An empty `all` matches every member; an empty `any` matches none.
- `tag` takes `has` (default) or `not_has`.
- An event condition without `count`/`sum`/`distinct` means "at least one such event".
- `sum`/`distinct` name a property; their comparison is given by `op`/`value` beside them
  (`{"event": "order_paid", "sum": "amount", "op": "gt", "value": 2000}`).
- Negative set filters on `order_paid` lines (`ne`, `not_in`) mean "no line matches".
- `coupon` is `{"coupon": TEMPLATE_CODE or "*", "state": available|redeemed|expired,
  "expires_within_days": N}`; an `available` coupon whose `expires_at` has passed is `expired`.
- Attributes with an instant (`registered_at`) also accept `within_days` instead of `op`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from siyu.segments.errors import SegmentDefinitionError
from siyu.segments.traits import LIFECYCLE_STAGES, RFM_CLASSES


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    NOT_IN = "not_in"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    BETWEEN = "between"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"
    CONTAINS = "contains"
    HAS = "has"
    NOT_HAS = "not_has"


class AttrKind(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    DATE = "date"
    INSTANT = "instant"


# Member attributes a segment may test, and the value type each one holds.
ATTRIBUTES: dict[str, AttrKind] = {
    "gender": AttrKind.TEXT,
    "age": AttrKind.INTEGER,
    "birthday": AttrKind.DATE,
    "registered_at": AttrKind.INSTANT,
    "store_code": AttrKind.TEXT,
    "channel": AttrKind.TEXT,
    "region": AttrKind.TEXT,
    "city": AttrKind.TEXT,
    "owner_guide": AttrKind.TEXT,
    "owner_store": AttrKind.TEXT,
}

ORDER_EVENT = "order_paid"
# Properties of an `order_paid` event; all but amount are the sets of the order's lines' values.
ORDER_SCALAR_PROPS = ("amount",)
ORDER_SET_PROPS = ("category", "sku", "store_code", "channel")


class CouponState(StrEnum):
    AVAILABLE = "available"
    REDEEMED = "redeemed"
    EXPIRED = "expired"


COMPARE_OPS = frozenset({Op.EQ, Op.NE, Op.GT, Op.GTE, Op.LT, Op.LTE, Op.BETWEEN, Op.IN, Op.NOT_IN})
PRESENCE_OPS = frozenset({Op.EXISTS, Op.NOT_EXISTS})
TEXT_OPS = frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN, Op.CONTAINS}) | PRESENCE_OPS
ORDERED_OPS = COMPARE_OPS | PRESENCE_OPS
NUMERIC_AGG_OPS = frozenset({Op.EQ, Op.NE, Op.GT, Op.GTE, Op.LT, Op.LTE, Op.BETWEEN})
MEMBERSHIP_OPS = frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN})

Scalar = str | int | float | Decimal | date | datetime


class FieldProblem(ValueError):
    """A problem with one field of a condition, so the JSON path can name the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _positive_days(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("must be a positive integer")
    return value


PositiveDays = Annotated[int, BeforeValidator(_positive_days)]
NonEmptyText = Annotated[str, Field(min_length=1, max_length=200)]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_value_shape(op: Op, value: Any) -> None:
    """The value's shape must fit the operator; raises ValueError naming the problem."""
    if op in PRESENCE_OPS:
        if value is not None:
            raise FieldProblem("value", f"`{op}` takes no value")
        return
    if value is None:
        raise FieldProblem("value", f"`{op}` needs a value")
    if op == Op.BETWEEN:
        if not isinstance(value, list) or len(value) != 2:
            raise FieldProblem("value", "`between` needs a value [low, high]")
        if value[0] is None or value[1] is None or value[0] > value[1]:
            raise FieldProblem("value", "`between` needs low <= high")
    elif op in (Op.IN, Op.NOT_IN):
        if not isinstance(value, list) or not value:
            raise FieldProblem("value", f"`{op}` needs a non-empty list of values")
    elif isinstance(value, list | dict):
        raise FieldProblem("value", f"`{op}` needs a single value")


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _coerce(kind: AttrKind, value: Any) -> Any:
    """Parse a JSON value into the attribute's type (dates and instants arrive as ISO strings)."""
    if kind == AttrKind.TEXT:
        if not isinstance(value, str):
            raise FieldProblem("value", "must be a string")
        return value
    if kind == AttrKind.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldProblem("value", "must be an integer")
        return value
    if not isinstance(value, str):
        raise FieldProblem("value", "must be an ISO 8601 string")
    try:
        return date.fromisoformat(value) if kind == AttrKind.DATE else datetime.fromisoformat(value)
    except ValueError:
        raise FieldProblem("value", f"{value!r} is not an ISO 8601 {kind}") from None


class AttrCondition(_Node):
    attr: str
    op: Op | None = None
    value: Any = None
    within_days: PositiveDays | None = None

    @model_validator(mode="after")
    def _fits_attribute(self) -> AttrCondition:
        kind = ATTRIBUTES.get(self.attr)
        if kind is None:
            raise FieldProblem(
                "attr", f"unknown attribute {self.attr!r}; one of {', '.join(ATTRIBUTES)}"
            )
        if self.within_days is not None:
            if kind != AttrKind.INSTANT or self.op is not None:
                raise FieldProblem(
                    "within_days", "applies to instant attributes only, without `op`"
                )
            return self
        if self.op is None:
            raise FieldProblem("op", "is required")
        allowed = TEXT_OPS if kind == AttrKind.TEXT else ORDERED_OPS
        if self.op not in allowed:
            raise FieldProblem(
                "op", f"`{self.op}` does not apply to {kind} attribute {self.attr!r}"
            )
        _check_value_shape(self.op, self.value)
        coerced = [_coerce(kind, item) for item in _values(self.value)]
        if self.op in (Op.BETWEEN, Op.IN, Op.NOT_IN):
            object.__setattr__(self, "value", coerced)
        elif coerced:
            object.__setattr__(self, "value", coerced[0])
        return self


class TagCondition(_Node):
    tag: NonEmptyText
    op: Literal[Op.HAS, Op.NOT_HAS] = Op.HAS


class PropFilter(_Node):
    prop: NonEmptyText
    op: Op
    value: Any = None

    @model_validator(mode="after")
    def _fits_operator(self) -> PropFilter:
        if self.op in (Op.HAS, Op.NOT_HAS):
            raise FieldProblem("op", f"`{self.op}` applies to tags only")
        _check_value_shape(self.op, self.value)
        for item in _values(self.value):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise FieldProblem("value", "values must be strings or numbers")
        if self.op == Op.CONTAINS and not isinstance(self.value, str):
            raise FieldProblem("value", "`contains` needs a string")
        return self

    @property
    def numeric(self) -> bool:
        return any(isinstance(item, int | float) for item in _values(self.value))


class Comparison(_Node):
    op: Op
    value: Any

    @model_validator(mode="after")
    def _numeric(self) -> Comparison:
        if self.op not in NUMERIC_AGG_OPS:
            raise FieldProblem("op", f"`{self.op}` does not compare numbers")
        _check_value_shape(self.op, self.value)
        for item in _values(self.value):
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise FieldProblem("value", "must be a number")
        return self


class EventCondition(_Node):
    event: NonEmptyText
    within_days: PositiveDays | None = None
    where: list[PropFilter] = Field(default_factory=list)
    count: Comparison | None = None
    sum: NonEmptyText | None = None
    distinct: NonEmptyText | None = None
    op: Op | None = None
    value: Any = None

    @model_validator(mode="after")
    def _one_measure(self) -> EventCondition:
        measures = [m for m in ("count", "sum", "distinct") if getattr(self, m) is not None]
        if len(measures) > 1:
            raise ValueError(f"give one of count, sum, distinct (got {', '.join(measures)})")
        if self.sum is None and self.distinct is None:
            if self.op is not None or self.value is not None:
                raise FieldProblem("op", "`op`/`value` belong with `sum` or `distinct`")
            return self
        if self.op is None:
            raise FieldProblem("op", "`sum`/`distinct` need `op` and `value`")
        Comparison(op=self.op, value=self.value)
        if self.event == ORDER_EVENT and self.sum is not None and self.sum != "amount":
            raise FieldProblem("sum", "an `order_paid` sum is over `amount`")
        return self

    @property
    def measure(self) -> Comparison:
        """The comparison applied to the aggregate; plain conditions mean count >= 1."""
        if self.count is not None:
            return self.count
        if self.op is not None:
            return Comparison(op=self.op, value=self.value)
        return Comparison(op=Op.GTE, value=1)


def _membership(names: tuple[str, ...], label: str, op: Op, value: Any) -> list[str]:
    if op not in MEMBERSHIP_OPS:
        raise ValueError(f"`{op}` does not apply; use eq, ne, in or not_in")
    _check_value_shape(op, value)
    values = _values(value)
    unknown = [v for v in values if v not in names]
    if unknown:
        raise FieldProblem("value", f"unknown {label} {unknown[0]!r}; one of {', '.join(names)}")
    return [str(v) for v in values]


class LifecycleCondition(_Node):
    lifecycle: Op
    value: Any

    @model_validator(mode="after")
    def _stages(self) -> LifecycleCondition:
        _membership(LIFECYCLE_STAGES, "lifecycle stage", self.lifecycle, self.value)
        return self


class RfmCondition(_Node):
    rfm: Op
    value: Any

    @model_validator(mode="after")
    def _classes(self) -> RfmCondition:
        _membership(RFM_CLASSES, "RFM class", self.rfm, self.value)
        return self


class SegmentReference(_Node):
    segment: NonEmptyText


class GroupClusterCondition(_Node):
    in_group_cluster: NonEmptyText


class CouponCondition(_Node):
    coupon: NonEmptyText
    state: CouponState = CouponState.AVAILABLE
    expires_within_days: PositiveDays | None = None

    @model_validator(mode="after")
    def _expiry_needs_available(self) -> CouponCondition:
        if self.expires_within_days is not None and self.state != CouponState.AVAILABLE:
            raise ValueError("`expires_within_days` applies to available coupons")
        return self


class AllOf(_Node):
    all: list[Condition]


class AnyOf(_Node):
    any: list[Condition]


class NotOf(_Node):
    not_: Condition = Field(alias="not")


# The key that tells which condition a JSON object is, and the tag Pydantic records in paths.
_KINDS = {
    "all": "cond:all",
    "any": "cond:any",
    "not": "cond:not",
    "attr": "cond:attr",
    "tag": "cond:tag",
    "event": "cond:event",
    "lifecycle": "cond:lifecycle",
    "rfm": "cond:rfm",
    "segment": "cond:segment",
    "in_group_cluster": "cond:in_group_cluster",
    "coupon": "cond:coupon",
}


def _kind_of(node: Any) -> str | None:
    if isinstance(node, dict):
        for key, tag in _KINDS.items():
            if key in node:
                return tag
        return None
    return next((t for k, t in _KINDS.items() if isinstance(node, _MODELS[k])), None)


Condition = Annotated[
    Union[  # noqa: UP007 - Annotated[Union[...]] is what Pydantic's tagged unions document
        Annotated[AllOf, Tag("cond:all")],
        Annotated[AnyOf, Tag("cond:any")],
        Annotated[NotOf, Tag("cond:not")],
        Annotated[AttrCondition, Tag("cond:attr")],
        Annotated[TagCondition, Tag("cond:tag")],
        Annotated[EventCondition, Tag("cond:event")],
        Annotated[LifecycleCondition, Tag("cond:lifecycle")],
        Annotated[RfmCondition, Tag("cond:rfm")],
        Annotated[SegmentReference, Tag("cond:segment")],
        Annotated[GroupClusterCondition, Tag("cond:in_group_cluster")],
        Annotated[CouponCondition, Tag("cond:coupon")],
    ],
    Discriminator(_kind_of),
]

_MODELS: dict[str, type[BaseModel]] = {
    "all": AllOf,
    "any": AnyOf,
    "not": NotOf,
    "attr": AttrCondition,
    "tag": TagCondition,
    "event": EventCondition,
    "lifecycle": LifecycleCondition,
    "rfm": RfmCondition,
    "segment": SegmentReference,
    "in_group_cluster": GroupClusterCondition,
    "coupon": CouponCondition,
}

for _model in (AllOf, AnyOf, NotOf):
    _model.model_rebuild()

_ADAPTER: TypeAdapter[Condition] = TypeAdapter(Condition)


def parse_definition(data: Any) -> Condition:
    """Validate a JSON segment definition; every problem names its JSON path."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as error:
        raise SegmentDefinitionError(_problems(error)) from None


def dump_definition(condition: Condition) -> dict[str, Any]:
    """The canonical JSON form of a condition tree (what is stored and shown)."""
    dumped: dict[str, Any] = _ADAPTER.dump_python(
        condition, mode="json", by_alias=True, exclude_defaults=True
    )
    return dumped


def _problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        path = _json_path(item["loc"])
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, FieldProblem):
            path += f".{cause.field}"
        problems.append(f"{path}: {_message(item)}")
    return problems


def _json_path(loc: tuple[int | str, ...]) -> str:
    path = "$"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not part.startswith("cond:"):
            path += f".{part}"
    return path


def _message(item: Any) -> str:
    kind = item["type"]
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        return f"unknown condition; an object with one of the keys {', '.join(_KINDS)}"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "is required"
    message = str(item["msg"])
    return message.removeprefix("Value error, ")


def references(condition: Condition) -> set[str]:
    """Names of the saved segments a condition tree refers to, directly."""
    if isinstance(condition, SegmentReference):
        return {condition.segment}
    if isinstance(condition, AllOf | AnyOf):
        children = condition.all if isinstance(condition, AllOf) else condition.any
        return set().union(*(references(child) for child in children))
    if isinstance(condition, NotOf):
        return references(condition.not_)
    return set()


def windowed(condition: Condition) -> bool:
    """True when the result depends on 'now' (a window moves even if no data changes)."""
    if isinstance(condition, AllOf | AnyOf):
        children = condition.all if isinstance(condition, AllOf) else condition.any
        return any(windowed(child) for child in children)
    if isinstance(condition, NotOf):
        return windowed(condition.not_)
    if isinstance(condition, EventCondition | CouponCondition | LifecycleCondition | RfmCondition):
        return True
    if isinstance(condition, AttrCondition):
        return condition.within_days is not None or condition.attr == "age"
    return False
