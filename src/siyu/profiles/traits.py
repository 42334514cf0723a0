"""The as-of traits of one member, derived from its list of paid orders exactly as §4.5 says
(the same definitions the report SQL implements; the tests compare the two)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from siyu.analytics.lifecycle import LifecycleStage, LifecycleThresholds
from siyu.analytics.rfm import RfmClass, RfmThresholds

Orders = list[tuple[date, Decimal]]  # (paid_date, order total), oldest first


@dataclass(frozen=True)
class Profile:
    member_id: int
    as_of: date
    first_order_date: date | None
    last_order_date: date | None
    orders_lifetime: int
    spend_lifetime: Decimal
    orders_365: int
    spend_365: Decimal
    average_order_value: Decimal | None
    favourite_category: str | None
    favourite_store: str | None
    days_since_last_order: int | None
    lifecycle_stage: str
    rfm_class: str | None
    koc_score: float

    def as_dict(self) -> dict[str, object]:
        return {
            key: (str(value) if isinstance(value, Decimal | date) else value)
            for key, value in self.__dict__.items()
        }


@dataclass(frozen=True)
class KocWeights:
    """The KOC score hook: how much a share and an invite weigh."""

    share: float = 1.0
    invite: float = 3.0


@dataclass(frozen=True)
class WindowTotals:
    orders: int
    spend: Decimal
    days_since_last: int | None


def window_totals(orders: Orders, *, as_of: date, window_days: int) -> WindowTotals:
    inside = [(d, a) for d, a in orders if (as_of - d).days < window_days]
    return WindowTotals(
        orders=len(inside),
        spend=sum((a for _, a in inside), Decimal(0)),
        days_since_last=(as_of - inside[-1][0]).days if inside else None,
    )


def lifecycle_stage(
    orders: Orders, *, as_of: date, thresholds: LifecycleThresholds | None = None
) -> str:
    t = thresholds or LifecycleThresholds()
    if not orders:
        return LifecycleStage.REGISTERED.value
    d_last = (as_of - orders[-1][0]).days
    if d_last >= t.churn_days:
        return LifecycleStage.CHURNED.value
    if d_last >= t.active_days:
        return LifecycleStage.SILENT.value
    if len(orders) == 1:
        return LifecycleStage.INTRODUCED.value
    in_window = sum(1 for d, _ in orders if (as_of - d).days < t.mature_window_days)
    if in_window >= t.mature_orders:
        return LifecycleStage.MATURE.value
    return LifecycleStage.GROWING.value


def classify_rfm(
    window: WindowTotals, *, thresholds: RfmThresholds, totals: tuple[int, int, int, Decimal]
) -> str:
    """The class of one member given (n, Σr, Σf, Σm) over all RFM members (exact arithmetic)."""
    n, sum_r, sum_f, sum_m = totals
    r = window.days_since_last or 0
    high_r = r < thresholds.r_cut if thresholds.r_cut is not None else r * n < sum_r
    high_f = (
        window.orders > thresholds.f_cut
        if thresholds.f_cut is not None
        else window.orders * n > sum_f
    )
    high_m = (
        window.spend > thresholds.m_cut
        if thresholds.m_cut is not None
        else window.spend * n > sum_m
    )
    kind = {(True, True): "VALUE", (True, False): "DEVELOP", (False, True): "RETAIN"}.get(
        (high_r, high_f), "WINBACK"
    )
    return RfmClass[f"{'IMPORTANT' if high_m else 'GENERAL'}_{kind}"].value


def koc_score(*, shares: int, invites: int, weights: KocWeights | None = None) -> float:
    w = weights or KocWeights()
    return float(shares * w.share + invites * w.invite)
