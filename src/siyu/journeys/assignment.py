"""Stable random assignment: holdout and split paths by a hash of (journey, step, member id).

SHA-256 rather than Python's hash(): the same member lands in the same group in every process,
on every machine and after every restart, which is what makes a holdout comparison honest.
"""

from __future__ import annotations

import hashlib

from siyu.journeys.definition import SplitPath

BUCKETS = 10_000


def bucket(*, salt: str, member_id: int) -> int:
    digest = hashlib.sha256(f"{salt}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_holdout(*, journey: str, member_id: int, percent: float) -> bool:
    return bucket(salt=f"{journey}:holdout", member_id=member_id) < round(percent * BUCKETS / 100)


def choose_path(*, journey: str, step_id: str, member_id: int, paths: list[SplitPath]) -> SplitPath:
    total = sum(p.weight for p in paths)
    point = bucket(salt=f"{journey}:{step_id}", member_id=member_id) * total // BUCKETS
    for path in paths:
        if point < path.weight:
            return path
        point -= path.weight
    return paths[-1]
