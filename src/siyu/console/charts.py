"""Axis arithmetic for the inline-SVG chart macros in templates/_charts.html."""

from __future__ import annotations

import math
from decimal import Decimal

Number = int | float | Decimal


def nice_max(value: Number | None) -> float:
    """The smallest 1/2/2.5/5 × 10^k at or above the value, so axes end on a round number."""
    top = float(value or 0)
    if top <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(top))
    for step in (1, 2, 2.5, 5, 10):
        if top <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def ticks(top: float, count: int = 4) -> list[float]:
    """Evenly spaced gridline values from 0 to top inclusive."""
    return [top * i / count for i in range(count + 1)]


def short_number(value: Number | None) -> str:
    """Axis labels: 1200 → 1.2k, 3400000 → 3.4M (万/亿 would confuse mixed audiences)."""
    if value is None:
        return ""
    number = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= limit:
            return f"{number / limit:.1f}".rstrip("0").rstrip(".") + suffix
    if number == int(number):
        return str(int(number))
    return f"{number:.2f}".rstrip("0").rstrip(".")
