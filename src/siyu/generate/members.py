"""Member rows, one chunk at a time, with the identity overlaps OneID has to untangle.

Decisions (the issue leaves them open):
- About 4% of members are a second registration of the previous row's person through the
  mini-program, carrying the same phone (often in another format); about 2% are a WeCom
  contact sharing the previous row's unionid under another member_no.
- Every `placeholder_stride`-th member carries one of three placeholder phones.
- Phones are 80% clean, 20% in messy formats (+86, 0086, spaces, dashes, parentheses).
- Malformed rows (bad birthday, bad registered_at, no identity at all) are ~1 in 4,000, plus
  one of each kind in the first chunk so that small brands show them too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siyu.generate import columns as col
from siyu.generate.catalog import (
    CHANNEL_WEIGHTS,
    CHANNELS,
    GENDER_WEIGHTS,
    GENDERS,
    GIVEN_CHARS,
    PLACEHOLDER_PHONES,
    SURNAMES,
)
from siyu.generate.plan import SECONDS_PER_DAY, STREAM_MEMBERS, Plan, channel_index

MEMBER_COLUMNS = (
    "member_no",
    "phone",
    "unionid",
    "openid",
    "external_userid",
    "name",
    "gender",
    "birthday",
    "registered_at",
    "store_code",
    "channel",
)
MALFORMED_KINDS = ("bad_birthday", "bad_registered_at", "no_identity")
GUEST_PHONE_BASE = 500_000_000  # phone index space of buyers without a member row
POS, MINIPROGRAM, WECOM, TMALL, DOUYIN = (channel_index(c) for c in CHANNELS)


@dataclass(frozen=True)
class MemberChunk:
    """One chunk's rows plus what orders and events need to follow the same people."""

    rows: dict[str, pa.Array]
    channel: np.ndarray
    store: np.ndarray
    reg_day: np.ndarray
    valid: np.ndarray
    has_phone: np.ndarray
    has_unionid: np.ndarray
    malformed: dict[str, int]

    def __len__(self) -> int:
        return len(self.channel)


def phone_numbers(index: np.ndarray, seed: int) -> pa.Array:
    """Distinct, valid mainland mobile numbers: an affine bijection of the index mod 10^9."""
    body = (index.astype(np.int64) * 738_463_229 + seed * 7_919 + 12_345) % 1_000_000_000
    second = 3 + (index * 5 + seed) % 7
    return pc.cast(pa.array(10_000_000_000 + second * 1_000_000_000 + body), pa.string())


def messy(phones: pa.Array, style: np.ndarray) -> pa.Array:
    """Format 0 is clean; 1..6 are the ways people and POS systems really type a mobile."""
    a = pc.utf8_slice_codeunits(phones, 0, 3)
    b = pc.utf8_slice_codeunits(phones, 3, 7)
    c = pc.utf8_slice_codeunits(phones, 7, 11)
    variants = [
        phones,
        col.concat("+86 ", a, " ", b, " ", c),
        col.concat(a, "-", b, "-", c),
        col.concat("(", a, ")", b, c),
        col.concat("0086", phones),
        col.concat("86-", phones),
        col.concat(" ", a, " ", b, " ", c, " "),
    ]
    return pc.choose(pa.array(style.astype(np.int8)), *variants)


def generate_members(plan: Plan, chunk: int) -> MemberChunk:
    first, stop = plan.chunk_range(chunk)
    n = stop - first
    rng = plan.rng(STREAM_MEMBERS, chunk)
    index = np.arange(first, stop, dtype=np.int64)
    channel = rng.choice(len(CHANNELS), size=n, p=np.array(CHANNEL_WEIGHTS) / sum(CHANNEL_WEIGHTS))
    bad = _malformed(rng, n, first_chunk=chunk == 0)
    placeholder = (index % plan.placeholder_stride == 0) & (bad < 0)
    dup_phone, bridge = _overlaps(rng, n, (bad >= 0) | placeholder)
    channel[dup_phone] = MINIPROGRAM
    channel[np.flatnonzero(dup_phone) - 1] = POS
    channel[bridge] = WECOM
    has = _identity_presence(rng, channel)
    has["phone"][np.flatnonzero(dup_phone) - 1] = True
    has["unionid"][np.flatnonzero(bridge) - 1] = True
    has["phone"] |= placeholder
    person = index.copy()
    person[dup_phone | bridge] -= 1  # the same human as the row before
    store = _stores(plan, rng, channel)
    reg_day = plan.sampler.sample(rng, np.zeros(n, dtype=np.int64))
    reg_day[dup_phone] = np.maximum(reg_day[dup_phone], reg_day[np.flatnonzero(dup_phone) - 1])
    rows = _rows(plan, rng, index, person, channel, store, reg_day, has, placeholder, dup_phone)
    _apply_malformed(rows, bad)
    return MemberChunk(
        rows=rows,
        channel=channel,
        store=store,
        reg_day=reg_day,
        valid=bad < 0,
        has_phone=has["phone"] & ~placeholder & (bad < 0),
        has_unionid=has["unionid"] & (bad < 0),
        malformed={kind: int((bad == k).sum()) for k, kind in enumerate(MALFORMED_KINDS)},
    )


def _malformed(rng: np.random.Generator, n: int, *, first_chunk: bool) -> np.ndarray:
    """Malformed kind per row (index into MALFORMED_KINDS), -1 for a good row."""
    kind = np.where(rng.random(n) < 1 / 4000, rng.integers(0, len(MALFORMED_KINDS), size=n), -1)
    if first_chunk:
        for k, row in enumerate((37, 59, 83)):
            if row < n:
                kind[row] = k
    return kind


def _overlaps(rng: np.random.Generator, n: int, odd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows that are the previous row's person again (by phone, or by unionid)."""
    draw = rng.random(n)
    role = np.where(draw < 0.04, 1, np.where(draw < 0.06, 2, 0))
    # A twin needs a plain row before it (not malformed, no placeholder phone, not a twin).
    plain_before = np.r_[False, (role[:-1] == 0) & ~odd[:-1]]
    role[~plain_before | odd] = 0
    return role == 1, role == 2


def _identity_presence(rng: np.random.Generator, channel: np.ndarray) -> dict[str, np.ndarray]:
    r = rng.random((4, len(channel)))
    phone_rate = np.array([0.96, 0.65, 0.40, 0.90, 0.85])[channel]
    unionid_rate = np.array([0.05, 0.85, 0.90, 0.0, 0.0])[channel]
    return {
        "phone": r[0] < phone_rate,
        "unionid": r[1] < unionid_rate,
        "openid": channel == MINIPROGRAM,
        "external_userid": channel == WECOM,
    }


def _stores(plan: Plan, rng: np.random.Generator, channel: np.ndarray) -> np.ndarray:
    n = len(channel)
    # Store popularity is skewed: a few flagship stores sign up far more members.
    weights = 1.0 / np.arange(1, plan.physical_stores + 1) ** 0.6
    store = rng.choice(plan.physical_stores, size=n, p=weights / weights.sum())
    online_mp = (channel == MINIPROGRAM) & (rng.random(n) < 0.4)
    store[online_mp] = plan.online_store("miniprogram")
    store[channel == TMALL] = plan.online_store("tmall")
    store[channel == DOUYIN] = plan.online_store("douyin")
    return store


def _rows(
    plan: Plan,
    rng: np.random.Generator,
    index: np.ndarray,
    person: np.ndarray,
    channel: np.ndarray,
    store: np.ndarray,
    reg_day: np.ndarray,
    has: dict[str, np.ndarray],
    placeholder: np.ndarray,
    dup_phone: np.ndarray,
) -> dict[str, pa.Array]:
    n = len(index)
    style = np.where(rng.random(n) < 0.2, rng.integers(1, 7, size=n), 0)
    style[dup_phone] = (style[np.flatnonzero(dup_phone) - 1] + 2) % 7  # same phone, other format
    phone = phone_numbers(person, plan.seed)
    phone = pc.if_else(
        pa.array(placeholder),
        col.pick(PLACEHOLDER_PHONES, index // plan.placeholder_stride % 3),
        phone,
    )
    seconds = plan.start_seconds + reg_day * SECONDS_PER_DAY + plan.seconds_of_day(rng, n)
    return {
        "member_no": col.padded(index + 1, 10, "DT"),
        "phone": col.masked(messy(phone, style), has["phone"]),
        "unionid": col.masked(unionids(person, plan.seed), has["unionid"]),
        "openid": col.masked(
            col.padded((index * 48_271 + plan.seed) % 10**12, 12, "oMP_"), has["openid"]
        ),
        "external_userid": col.masked(
            col.padded((index * 69_621 + plan.seed) % 10**12, 12, "wmDT_"), has["external_userid"]
        ),
        "name": col.masked(_names(rng, n), rng.random(n) >= 0.08),
        "gender": col.pick(GENDERS, rng.choice(3, size=n, p=np.array(GENDER_WEIGHTS))),
        "birthday": col.masked(col.day(_birthdays(plan, rng, reg_day)), rng.random(n) >= 0.12),
        "registered_at": col.instant(seconds),
        "store_code": col.pick(plan.store_codes, store),
        "channel": col.pick(CHANNELS, channel),
    }


def unionids(person: np.ndarray, seed: int) -> pa.Array:
    return col.padded((person * 16_807 + seed * 31 + 7) % 10**14, 14, "oDT6_")


def _names(rng: np.random.Generator, n: int) -> pa.Array:
    surname = col.pick(SURNAMES, rng.integers(0, len(SURNAMES), size=n))
    first = col.pick(GIVEN_CHARS, rng.integers(0, len(GIVEN_CHARS), size=n))
    second = col.pick(("", *GIVEN_CHARS), rng.integers(0, len(GIVEN_CHARS) + 1, size=n))
    return col.concat(surname, first, second)


def _birthdays(plan: Plan, rng: np.random.Generator, reg_day: np.ndarray) -> np.ndarray:
    age_days = (np.clip(rng.normal(31, 8, size=len(reg_day)), 16, 70) * 365.25).astype(np.int64)
    return plan.sampler.start_day + reg_day - age_days


def _apply_malformed(rows: dict[str, pa.Array], bad: np.ndarray) -> None:
    if not (bad >= 0).any():
        return
    rows["birthday"] = pc.if_else(pa.array(bad == 0), "1990-02-30", rows["birthday"])
    rows["registered_at"] = pc.if_else(
        pa.array(bad == 1), "2025/13/01 25:61", rows["registered_at"]
    )
    none = pa.array(bad == 2)
    for name in ("member_no", "phone", "unionid", "openid", "external_userid"):
        rows[name] = pc.if_else(none, pa.scalar(None, pa.string()), rows[name])
