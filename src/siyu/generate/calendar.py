"""Shopping seasonality: the day weights behind 618, Double 11 and Chinese New Year peaks."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from siyu.generate.catalog import CNY_DATES

EPOCH = date(1970, 1, 1)


def day_number(value: date) -> int:
    return (value - EPOCH).days


def day_weights(start: date, end: date) -> np.ndarray:
    """Relative sales weight of each day from start to end inclusive."""
    days = [start + timedelta(days=k) for k in range((end - start).days + 1)]
    return np.array([_weight(d) for d in days], dtype=np.float64)


def _weight(d: date) -> float:
    weight = 1.2 if d.weekday() >= 5 else 1.0
    if d.month == 6 and 1 <= d.day <= 18:  # 618: presales from June 1, the peak on the 18th
        weight *= 6.0 if d.day == 18 else 1.8
    if (d.month == 10 and d.day >= 24) or (d.month == 11 and d.day <= 11):  # Double 11
        weight *= 9.0 if (d.month, d.day) == (11, 11) else 1.7
    for cny in CNY_DATES:
        before = (cny - d).days
        if 0 < before <= 14:  # gift buying before the holiday
            weight *= 2.2
        elif -7 < before <= 0:  # the holiday itself: shops shut, sales drop
            weight *= 0.4
    return weight


class SeasonalSampler:
    """Draws days between a lower bound and the end with the seasonal weights (inverse CDF)."""

    def __init__(self, start: date, end: date) -> None:
        self.start_day = day_number(start)
        self.cumulative = np.concatenate(([0.0], np.cumsum(day_weights(start, end))))

    @property
    def days(self) -> int:
        return len(self.cumulative) - 1

    def sample(self, rng: np.random.Generator, lower: np.ndarray) -> np.ndarray:
        """One day offset (0-based from start) per lower bound, each ≥ its lower bound."""
        low = self.cumulative[lower]
        target = low + rng.random(len(lower)) * (self.cumulative[-1] - low)
        offsets = np.searchsorted(self.cumulative, target, side="right") - 1
        clipped: np.ndarray = np.clip(offsets, lower, self.days - 1)
        return clipped
