"""What every chunk generator needs to know about the run: seed, period, stores, chunking."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from siyu.generate.calendar import SeasonalSampler, day_number
from siyu.generate.catalog import CHANNELS, ONLINE_STORES
from siyu.generate.stores import Roster

# Fixed, never derived from the machine: the chunking is part of what makes output repeatable.
CHUNK_MEMBERS = 50_000
SECONDS_PER_DAY = 86_400
# Hour-of-day shape of retail traffic: lunch and the evening peak.
HOUR_WEIGHTS = np.array(
    [
        0.3,
        0.1,
        0.05,
        0.05,
        0.05,
        0.1,
        0.3,
        0.8,
        1.5,
        2.0,
        3.0,
        4.0,
        5.0,
        4.0,
        3.5,
        3.5,
        4.0,
        4.5,
        5.0,
        6.0,
        6.5,
        5.5,
        3.5,
        1.5,
    ]
)
HOUR_P = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()

# Streams keep members, orders and events independent: changing how events are drawn
# does not move a single order.
STREAM_MEMBERS, STREAM_ORDERS, STREAM_EVENTS = 11, 12, 13


@dataclass(frozen=True)
class Plan:
    seed: int
    members: int
    start: date
    end: date
    roster: Roster
    sampler: SeasonalSampler = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sampler", SeasonalSampler(self.start, self.end))

    @property
    def chunks(self) -> int:
        return (self.members + CHUNK_MEMBERS - 1) // CHUNK_MEMBERS

    def chunk_range(self, chunk: int) -> tuple[int, int]:
        first = chunk * CHUNK_MEMBERS
        return first, min(self.members, first + CHUNK_MEMBERS)

    def rng(self, stream: int, chunk: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, stream, chunk])

    @property
    def start_seconds(self) -> int:
        """Local wall-clock seconds since the epoch at the first day's midnight."""
        return day_number(self.start) * SECONDS_PER_DAY

    @property
    def store_codes(self) -> list[str]:
        """Physical stores first, then the online stores in CHANNELS order of ONLINE_STORES."""
        return self.roster.physical_codes + [code for code, _, _ in ONLINE_STORES]

    @property
    def physical_stores(self) -> int:
        return len(self.roster.physical_codes)

    def online_store(self, channel: str) -> int:
        """Index in store_codes of the brand's own store for an online channel."""
        channels = [ch for _, _, ch in ONLINE_STORES]
        return self.physical_stores + channels.index(channel)

    @property
    def placeholder_stride(self) -> int:
        """Every stride-th member gets a placeholder phone: ≥ 20 per phone, ~0.5% at scale."""
        return max(5, min(200, self.members // 100))

    def seconds_of_day(self, rng: np.random.Generator, size: int) -> np.ndarray:
        hours = rng.choice(24, size=size, p=HOUR_P)
        return hours * 3600 + rng.integers(0, 3600, size=size)


def channel_index(name: str) -> int:
    return CHANNELS.index(name)
