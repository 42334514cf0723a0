"""What a coupon is worth on a cart, when it may be used, and which coupons combine."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from siyu.loyalty.coupons import (
    Cart,
    CartLine,
    CouponTerms,
    parse_template_spec,
    quote,
    stacking_refusal,
)
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode

SHANGHAI = ZoneInfo("Asia/Shanghai")
TUESDAY_10AM = datetime(2026, 6, 16, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
CART = Cart(
    store_code="SH001",
    channel="pos",
    lines=[
        CartLine(sku="OOLONG-250G", category="tea", amount_fen=12800),
        CartLine(sku="MUG-01", category="ware", amount_fen=3900),
    ],
    delivery_fee_fen=800,
)


def worth(**terms: object) -> tuple[bool, int, str]:
    q = quote(CouponTerms(code="C", name="c", **terms), CART, at=TUESDAY_10AM, tz=SHANGHAI)  # type: ignore[arg-type]
    return q.usable, q.discount_fen, q.reason


def test_spend_save_applies_at_the_threshold_on_eligible_lines_only() -> None:
    assert worth(
        kind="spend_save", threshold_fen=10000, value_fen=2000, scope={"categories": ["tea"]}
    ) == (True, 2000, "")
    assert worth(
        kind="spend_save", threshold_fen=5000, value_fen=1000, scope={"categories": ["ware"]}
    ) == (False, 0, "spend 1100 fen more on eligible items")


def test_percent_off_is_floored_and_capped() -> None:
    assert worth(kind="percent", percent_off=15) == (True, 2505, "")  # 16700 × 15% = 2505
    assert worth(kind="percent", percent_off=15, cap_fen=2000) == (True, 2000, "")


def test_cash_never_exceeds_the_eligible_amount() -> None:
    assert worth(kind="cash", value_fen=5000, scope={"skus": ["MUG-01"]}) == (True, 3900, "")


def test_free_delivery_takes_off_the_fee_and_gift_takes_off_nothing() -> None:
    assert worth(kind="free_delivery") == (True, 800, "")
    q = quote(
        CouponTerms(code="G", name="g", kind="gift", gift_sku="TEA-SAMPLE"),
        CART,
        at=TUESDAY_10AM,
        tz=SHANGHAI,
    )
    assert (q.usable, q.discount_fen, q.gift_sku) == (True, 0, "TEA-SAMPLE")


def test_store_channel_weekday_and_time_window_gate_the_coupon() -> None:
    assert (
        worth(kind="cash", value_fen=100, scope={"stores": ["BJ001"]})[2]
        == "not valid at store SH001"
    )
    assert (
        worth(kind="cash", value_fen=100, scope={"channels": ["mini"]})[2]
        == "not valid on channel pos"
    )
    assert worth(kind="cash", value_fen=100, weekdays=(2,))[0] is True  # member day: Tuesday
    assert worth(kind="cash", value_fen=100, weekdays=(3,))[2] == "not valid on weekday 2"
    assert (
        worth(kind="cash", value_fen=100, time_start="14:00", time_end="17:00")[2]
        == "valid only 14:00–17:00"
    )


def test_exclusive_coupons_stand_alone_and_groups_allow_one_each() -> None:
    a = CouponTerms(code="A", name="a", kind="cash", stack_group="store")
    b = CouponTerms(code="B", name="b", kind="cash", stack_group="store")
    d = CouponTerms(code="D", name="d", kind="free_delivery", stack_group="delivery")
    x = CouponTerms(code="X", name="x", kind="cash", exclusive=True)
    assert stacking_refusal([a, d]) == ""
    assert stacking_refusal([a, b]) == "only one coupon per stacking group (store)"
    assert stacking_refusal([x, d]) == "X cannot be combined with other coupons"
    assert stacking_refusal([x]) == ""


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"kind": "spend_save", "threshold_fen": 1000, "value_fen": 2000, "valid_days": 7},
            "threshold_fen must be ≥ value_fen",
        ),
        (
            {"kind": "cash", "value_fen": 500, "threshold_fen": 100, "valid_days": 7},
            "cash (无门槛) coupons have no threshold",
        ),
        ({"kind": "gift", "valid_days": 7}, "gift: gift_sku is required"),
        ({"kind": "cash", "value_fen": 500}, "relative validity needs valid_days"),
        (
            {
                "kind": "cash",
                "value_fen": 500,
                "validity": "fixed",
                "valid_from": "2026-07-01T00:00:00+08:00",
                "valid_until": "2026-06-01T00:00:00+08:00",
            },
            "valid_until must be after valid_from",
        ),
        ({"kind": "cash", "value_fen": 500, "valid_days": 7, "weekdays": [8]}, "weekdays"),
    ],
)
def test_an_inconsistent_template_is_refused_with_the_reason(
    spec: dict[str, object], message: str
) -> None:
    with pytest.raises(LoyaltyError) as refused:
        parse_template_spec({"code": "T1", "name": "t", **spec})
    assert refused.value.code == LoyaltyErrorCode.INVALID_TEMPLATE
    assert message in refused.value.message
