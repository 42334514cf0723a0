"""Coupon terms as pure logic: the template spec an operator writes, what a coupon is worth on a
cart, when it may be used, and which coupons may be combined.

Decisions where the issue is silent:
- Money is integer fen. A percent coupon saves floor(eligible × percent_off / 100), capped.
- Scope: SKUs and categories select the cart lines a coupon applies to (a line matches when its
  SKU or its category is listed; no SKU/category list = every line); stores and channels gate
  the whole cart. The threshold is compared with the eligible lines' total, not the cart's.
- Relative validity: usable from claim + start_after_days days for valid_days days (instants,
  not calendar days), so a coupon claimed at 21:00 lasts until 21:00.
- Weekdays are ISO (1 = Monday … 7 = Sunday) and the time window [time_start, time_end) is in
  the business time zone; an empty list / no window means any time.
- Stacking: an exclusive coupon is used alone; otherwise at most one coupon per stack group
  (a coupon without a group is its own group), so "combinable groups" combine with each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.models import CouponKind, ValidityKind

SCOPE_KEYS = ("skus", "categories", "stores", "channels")


class TemplateSpec(BaseModel):
    """What an operator writes in a template file (YAML/JSON) or the console form."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    name: str = Field(min_length=1, max_length=200)
    kind: CouponKind
    threshold_fen: int = Field(default=0, ge=0)
    value_fen: int = Field(default=0, ge=0)
    percent_off: int = Field(default=0, ge=0, lt=100)
    cap_fen: int | None = Field(default=None, gt=0)
    gift_sku: str | None = None
    scope: dict[Literal["skus", "categories", "stores", "channels"], list[str]] = Field(
        default_factory=dict
    )
    validity: Literal["fixed", "relative"] = "relative"
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int | None = Field(default=None, ge=1)
    start_after_days: int = Field(default=0, ge=0)
    weekdays: list[int] = Field(default_factory=list)
    time_start: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    time_end: str | None = Field(default=None, pattern=r"^([01]\d|2[0-4]):[0-5]\d$")
    budget_total: int | None = Field(default=None, ge=1)
    budget_daily: int | None = Field(default=None, ge=1)
    per_member_limit: int = Field(default=1, ge=1, le=1000)
    exclusive: bool = False
    stack_group: str | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def _consistent(self) -> TemplateSpec:
        for problem in _kind_problems(self) + _validity_problems(self):
            raise ValueError(problem)
        if any(d < 1 or d > 7 for d in self.weekdays):
            raise ValueError("weekdays: use 1 (Monday) … 7 (Sunday)")
        if (self.time_start is None) != (self.time_end is None):
            raise ValueError("time_start and time_end go together")
        return self


def _kind_problems(spec: TemplateSpec) -> list[str]:
    kind = spec.kind
    if kind in (CouponKind.SPEND_SAVE, CouponKind.CASH) and spec.value_fen <= 0:
        return [f"{kind}: value_fen must be > 0"]
    if kind == CouponKind.SPEND_SAVE and spec.threshold_fen < spec.value_fen:
        return ["spend_save: threshold_fen must be ≥ value_fen (spend X save Y with Y ≤ X)"]
    if kind == CouponKind.CASH and spec.threshold_fen:
        return ["cash (无门槛) coupons have no threshold: drop threshold_fen"]
    if kind == CouponKind.PERCENT and not 0 < spec.percent_off < 100:
        return ["percent: percent_off must be between 1 and 99"]
    if kind == CouponKind.GIFT and not spec.gift_sku:
        return ["gift: gift_sku is required"]
    return []


def _validity_problems(spec: TemplateSpec) -> list[str]:
    if spec.validity == "fixed":
        if spec.valid_from is None or spec.valid_until is None:
            return ["fixed validity needs valid_from and valid_until"]
        if spec.valid_from.tzinfo is None or spec.valid_until.tzinfo is None:
            return ["valid_from/valid_until need a UTC offset, e.g. 2026-07-01T00:00:00+08:00"]
        if spec.valid_until <= spec.valid_from:
            return ["valid_until must be after valid_from"]
    elif spec.valid_days is None:
        return ["relative validity needs valid_days (days after claim)"]
    return []


def parse_template_spec(data: Any) -> TemplateSpec:
    """Validate a template document, naming every bad field in one error."""
    try:
        return TemplateSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'template'}: {e['msg']}" for e in exc.errors()
        )
        raise LoyaltyError(LoyaltyErrorCode.INVALID_TEMPLATE, problems) from exc


@dataclass(frozen=True)
class CouponTerms:
    """The parts of a template that decide whether and how much a coupon is worth."""

    code: str
    name: str
    kind: str
    threshold_fen: int = 0
    value_fen: int = 0
    percent_off: int = 0
    cap_fen: int | None = None
    gift_sku: str | None = None
    scope: dict[str, list[str]] = field(default_factory=dict)
    weekdays: tuple[int, ...] = ()
    time_start: str | None = None
    time_end: str | None = None
    exclusive: bool = False
    stack_group: str | None = None


# A line or a fee above ¥100 million is a typo or an attack, not a cart; the bound also keeps
# every sum and percentage far inside a 64-bit integer.
MAX_AMOUNT_FEN = 10**10


class CartLine(BaseModel):
    sku: str | None = None
    category: str | None = None
    amount_fen: int = Field(ge=0, le=MAX_AMOUNT_FEN)


class Cart(BaseModel):
    """What the POS or mini-program is about to charge, in fen."""

    store_code: str | None = None
    channel: str | None = None
    lines: list[CartLine] = Field(default_factory=list, max_length=1000)
    delivery_fee_fen: int = Field(default=0, ge=0, le=MAX_AMOUNT_FEN)

    @property
    def total_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)


@dataclass(frozen=True)
class Quote:
    """A coupon's worth on a cart: usable or the reason it is not."""

    usable: bool
    discount_fen: int = 0
    gift_sku: str | None = None
    reason: str = ""


def eligible_amount(terms: CouponTerms, cart: Cart) -> int:
    skus = set(terms.scope.get("skus", []))
    categories = set(terms.scope.get("categories", []))
    if not skus and not categories:
        return cart.total_fen
    return sum(
        line.amount_fen for line in cart.lines if line.sku in skus or line.category in categories
    )


def quote(terms: CouponTerms, cart: Cart, *, at: datetime, tz: ZoneInfo) -> Quote:
    """What this coupon takes off this cart at this instant, or why it cannot be used."""
    refusal = _scope_refusal(terms, cart) or _window_refusal(terms, at=at, tz=tz)
    if refusal:
        return Quote(usable=False, reason=refusal)
    eligible = eligible_amount(terms, cart)
    if eligible <= 0:
        return Quote(usable=False, reason="no item in the cart is in the coupon's scope")
    if eligible < terms.threshold_fen:
        return Quote(
            usable=False,
            reason=f"spend {terms.threshold_fen - eligible} fen more on eligible items",
        )
    return _worth(terms, cart, eligible)


def _worth(terms: CouponTerms, cart: Cart, eligible: int) -> Quote:
    kind = terms.kind
    if kind in (CouponKind.SPEND_SAVE, CouponKind.CASH):
        return Quote(usable=True, discount_fen=min(terms.value_fen, eligible))
    if kind == CouponKind.PERCENT:
        off = eligible * terms.percent_off // 100
        return Quote(usable=True, discount_fen=min(off, terms.cap_fen or off))
    if kind == CouponKind.FREE_DELIVERY:
        if cart.delivery_fee_fen <= 0:
            return Quote(usable=False, reason="the cart has no delivery fee")
        return Quote(usable=True, discount_fen=cart.delivery_fee_fen)
    return Quote(usable=True, gift_sku=terms.gift_sku)


def _scope_refusal(terms: CouponTerms, cart: Cart) -> str:
    stores = terms.scope.get("stores", [])
    if stores and cart.store_code not in stores:
        return f"not valid at store {cart.store_code or '(none)'}"
    channels = terms.scope.get("channels", [])
    if channels and cart.channel not in channels:
        return f"not valid on channel {cart.channel or '(none)'}"
    return ""


def _window_refusal(terms: CouponTerms, *, at: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    if terms.weekdays and local.isoweekday() not in terms.weekdays:
        return f"not valid on weekday {local.isoweekday()}"
    if terms.time_start and terms.time_end:
        start, end = _clock(terms.time_start), _clock(terms.time_end)
        if not start <= local.time().replace(tzinfo=None) < end:
            return f"valid only {terms.time_start}–{terms.time_end}"
    return ""


def _clock(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    return time.max if hours == 24 else time(hours, minutes)


def stacking_refusal(terms: list[CouponTerms]) -> str:
    """Why these coupons cannot be used together on one order ('' when they can)."""
    if len(terms) > 1 and any(t.exclusive for t in terms):
        exclusive = next(t.code for t in terms if t.exclusive)
        return f"{exclusive} cannot be combined with other coupons"
    groups = [t.stack_group or f"template:{t.code}" for t in terms]
    duplicated = sorted({g for g in groups if groups.count(g) > 1})
    if duplicated:
        return f"only one coupon per stacking group ({', '.join(duplicated)})"
    return ""


def validity_window(
    *,
    validity: str,
    now: datetime,
    valid_from: datetime | None,
    valid_until: datetime | None,
    valid_days: int | None,
    start_after_days: int,
) -> tuple[datetime, datetime]:
    """The [from, until) a coupon issued now gets; fixed on the coupon for its whole life."""
    if validity == ValidityKind.FIXED:
        assert valid_from is not None and valid_until is not None  # checked by TemplateSpec
        return valid_from, valid_until
    start = now + timedelta(days=start_after_days)
    return start, start + timedelta(days=valid_days or 1)
