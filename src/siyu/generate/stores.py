"""Stores across Chinese cities and regions, and the staff who work them (guides, BAs,
store managers, one or more regional supervisors per region). Small: built in memory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from siyu.generate.catalog import (
    BRAND,
    CITIES,
    CITY_WEIGHTS,
    GIVEN_CHARS,
    MALLS,
    ONLINE_STORES,
    SURNAMES,
)

STORE_COLUMNS = ("store_code", "name", "city", "region", "kind")
STAFF_COLUMNS = ("staff_no", "name", "role", "store_code", "region")
ONLINE_REGION = "线上"
# The persona every test and demo talks about: guide "Xiao Li" (李晓) at store SH001.
FIRST_GUIDE_NAME = "李晓"


@dataclass(frozen=True)
class Roster:
    stores: list[tuple[str, str, str, str, str]]
    staff: list[tuple[str, str, str, str, str]]

    @property
    def physical_codes(self) -> list[str]:
        return [row[0] for row in self.stores if row[4] != "online"]


def default_store_count(members: int) -> int:
    """One physical store per ~4,000 members, at least 8, at most 5,000."""
    return max(8, min(5000, members // 4000))


def build_roster(*, seed: int, stores: int) -> Roster:
    rng = np.random.default_rng([seed, 0, 1])
    store_rows = _physical_stores(rng, stores)
    store_rows += [(code, name, "", ONLINE_REGION, "online") for code, name, _ in ONLINE_STORES]
    return Roster(stores=store_rows, staff=_staff(rng, store_rows))


def _physical_stores(rng: np.random.Generator, count: int) -> list[tuple[str, str, str, str, str]]:
    weights = np.array(CITY_WEIGHTS) / sum(CITY_WEIGHTS)
    cities = rng.choice(len(CITIES), size=count, p=weights)
    cities[0] = 0  # SH001 always exists: the demo's flagship store
    per_city: dict[int, int] = {}
    rows: list[tuple[str, str, str, str, str]] = []
    for city_index in cities.tolist():
        prefix, city, region = CITIES[city_index]
        per_city[city_index] = per_city.get(city_index, 0) + 1
        number = per_city[city_index]
        mall = MALLS[(number - 1 + 5 * city_index) % len(MALLS)]
        branch = "" if number <= len(MALLS) else f"{(number - 1) // len(MALLS) + 1}号"
        kind = "direct" if not rows or rng.random() < 0.65 else "franchise"
        rows.append(
            (f"{prefix}{number:03d}", f"{BRAND} {city}{mall}{branch}店", city, region, kind)
        )
    return rows


def _staff(
    rng: np.random.Generator, stores: list[tuple[str, str, str, str, str]]
) -> list[tuple[str, str, str, str, str]]:
    people: list[tuple[str, str, str]] = []  # (role, store_code, region)
    for code, _, _, region, kind in stores:
        if kind == "online":
            continue
        people.append(("guide", code, region))
        people.append(("store_manager", code, region))
        for _ in range(int(rng.integers(1, 4))):
            people.append(("ba" if rng.random() < 0.3 else "guide", code, region))
    regions: dict[str, int] = {}
    for _, _, _, region, kind in stores:
        if kind != "online":
            regions[region] = regions.get(region, 0) + 1
    for region, count in regions.items():
        people += [("supervisor", "", region)] * (1 + count // 20)
    rows = []
    for number, (role, code, region) in enumerate(people, start=1):
        name = FIRST_GUIDE_NAME if number == 1 else _name(rng)
        rows.append((f"S{number:06d}", name, role, code, region))
    return rows


def _name(rng: np.random.Generator) -> str:
    given = "".join(
        GIVEN_CHARS[k] for k in rng.integers(0, len(GIVEN_CHARS), size=int(rng.integers(1, 3)))
    )
    return SURNAMES[int(rng.integers(0, len(SURNAMES)))] + given
