"""Row validation (DESIGN §4.2): one source row in, one valid record or one reason out.

Decisions where the contract is silent:
- `line` is the physical line of the row in a CSV/NDJSON file (the CSV header is line 1) and
  the 1-based row number in a Parquet file, so an operator can jump straight to it.
- An invalid phone is dropped as an identity and counted as a warning; the row is rejected only
  when no other valid identity remains.
- Empty strings and missing fields mean "no value". An empty `status` is `paid`, an empty
  `gender` is `U`, an empty `line_no` is 1.
- The plain `openid` field has no appid, so it is stored as identity type `openid`; events may
  name `openid:<appid>` explicitly.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from siyu.identity.oneid import MEMBER_NO, Key, MemberSeed, SourceRecord
from siyu.identity.phones import normalize_phone

MEMBER_IDENTITIES = ("member_no", "phone", "unionid", "openid", "external_userid")
ORDER_IDENTITIES = ("member_no", "phone", "unionid")
EVENT_IDENTITY_TYPES = re.compile(
    r"^(member_no|phone|unionid|external_userid|pos_id|openid(:.+)?)$"
)
AMOUNT = re.compile(r"^\d+(\.\d{1,2})?$")


class RowRejected(Exception):
    """The row cannot be accepted; `reason` names the field and what is wrong with it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ValidRow:
    """A validated row: its OneID record, the column values to store and its content hash."""

    record: SourceRecord
    values: dict[str, Any]
    row_hash: str
    warnings: int = 0
    notes: list[str] = field(default_factory=list)


def _text(row: dict[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _required(row: dict[str, Any], name: str) -> str:
    value = _text(row, name)
    if value is None:
        raise RowRejected(f"{name}: missing")
    return value


def parse_instant(raw: str, *, name: str, tz: tzinfo) -> datetime:
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise RowRejected(f"{name}: {raw!r} is not an ISO 8601 timestamp") from None
    instant = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)
    try:
        instant.astimezone(UTC)  # stored as UTC: 9999-12-31T23:00-05:00 has no such instant
    except OverflowError:
        raise RowRejected(f"{name}: {raw!r} is out of range") from None
    return instant


def _optional_instant(row: dict[str, Any], name: str, tz: tzinfo) -> datetime | None:
    raw = _text(row, name)
    return None if raw is None else parse_instant(raw, name=name, tz=tz)


def _birthday(row: dict[str, Any]) -> date | None:
    raw = _text(row, "birthday")
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise RowRejected(f"birthday: {raw!r} is not a date YYYY-MM-DD") from None


def _enum(row: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = _text(row, name) or default
    if value not in allowed:
        raise RowRejected(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _amount(row: dict[str, Any]) -> Decimal:
    raw = _required(row, "amount")
    if raw.startswith("-"):
        raise RowRejected(f"amount: {raw!r} is negative")
    if not AMOUNT.match(raw):
        raise RowRejected(f"amount: {raw!r} is not a number of yuan with at most 2 decimals")
    try:
        return Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern already guarantees a number
        raise RowRejected(f"amount: {raw!r} is not a number") from None


def _line_no(row: dict[str, Any]) -> int:
    raw = _text(row, "line_no")
    if raw is None:
        return 1
    if raw.isdecimal() and len(raw) < 16:  # the common case; exactly what the pattern allows
        value = int(raw)
        if value < 1:
            raise RowRejected(f"line_no: {raw!r} must be 1 or more")
        return value
    try:
        value = int(float(raw)) if re.fullmatch(r"\d+(\.0+)?", raw) else int(raw)
    except ValueError:
        raise RowRejected(f"line_no: {raw!r} is not a whole number") from None
    if value < 1:
        raise RowRejected(f"line_no: {raw!r} must be 1 or more")
    return value


def _identities(
    pairs: list[tuple[str, str | None]], notes: list[str]
) -> tuple[tuple[Key, ...], int]:
    """Normalised identity values; invalid phones become warnings instead of identities."""
    found: list[Key] = []
    warnings = 0
    for kind, raw in pairs:
        if raw is None:
            continue
        if kind == "phone":
            phone = normalize_phone(raw)
            if phone is None:
                warnings += 1
                notes.append(f"phone {raw!r} is not a valid mobile number")
                continue
            raw = phone
        if (kind, raw) not in found:
            found.append((kind, raw))
    if not found:
        detail = f" ({'; '.join(notes)})" if notes else ""
        raise RowRejected(f"no valid identity{detail}")
    return tuple(found), warnings


def _canonical(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return str(value)


def content_hash(values: dict[str, Any]) -> str:
    """A row's fingerprint for idempotent re-imports. Values are flat (str, int, Decimal,
    date, datetime, None, or an event's dicts); str() of each in key order is canonical enough
    and several times cheaper than JSON per row. The text hashed must never change (stored
    hashes decide whether a re-imported row is a duplicate), so the fast path below builds
    exactly the string `_canonical` would: f"{v}" is str(v) for every flat value."""
    parts = [
        prefix + (_canonical(value) if type(value) is dict else str(value))
        for prefix, value in zip(*_prefixes(tuple(values), values), strict=True)
    ]
    return hashlib.md5("\x1f".join(parts).encode(), usedforsecurity=False).hexdigest()


def _prefixes(keys: tuple[str, ...], values: dict[str, Any]) -> tuple[tuple[str, ...], list[Any]]:
    ordered = _sorted_keys(keys)
    return _key_prefixes(ordered), [values[key] for key in ordered]


@lru_cache(maxsize=64)
def _key_prefixes(ordered: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{key}\x1e" for key in ordered)


@lru_cache(maxsize=64)
def _sorted_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(keys))


def validate_member(row: dict[str, Any], *, tz: tzinfo) -> ValidRow:
    notes: list[str] = []
    text = _texts(row, MEMBER_FIELDS)
    identities, warnings = _identities([(k, text[k]) for k in MEMBER_IDENTITIES], notes)
    values: dict[str, Any] = {k: text[k] for k in ("name", "store_code", "channel")}
    values["gender"] = _enum(text, "gender", ("F", "M", "U"), "U")
    values["birthday"] = _birthday(text)
    values["registered_at"] = _optional_instant(text, "registered_at", tz)
    carried = dict(identities)  # one value per type: the fields are single columns
    for kind in MEMBER_IDENTITIES:
        values[kind] = carried.get(kind)
    member_no = values["member_no"]
    key = member_no or f"{identities[0][0]}:{identities[0][1]}"
    seed = MemberSeed(
        registered_at=values["registered_at"],
        channel=values["channel"],
        store_code=values["store_code"],
        name=values["name"],
        gender=values["gender"],
        birthday=values["birthday"],
    )
    record = SourceRecord(kind="member", key=key, identities=identities, seed=seed)
    return ValidRow(record, values, content_hash(values), warnings, notes)


def _texts(row: dict[str, Any], names: tuple[str, ...]) -> dict[str, str | None]:
    """`_text` of every name at once (one dict instead of a call per field on the hot path)."""
    found: dict[str, str | None] = {}
    for name in names:
        value = row.get(name)
        found[name] = None if value is None else (str(value).strip() or None)
    return found


MEMBER_FIELDS = (
    *MEMBER_IDENTITIES, "name", "store_code", "channel", "gender", "birthday", "registered_at",
)  # fmt: skip
ORDER_FIELDS = (
    "order_id", "line_no", *ORDER_IDENTITIES, "paid_at", "store_code", "channel", "amount",
    "status", "category", "sku",
)  # fmt: skip


def validate_order(row: dict[str, Any], *, tz: tzinfo) -> ValidRow:
    notes: list[str] = []
    text = _texts(row, ORDER_FIELDS)
    order_id = _required(text, "order_id")
    line_no = _line_no(text)
    identities, warnings = _identities([(k, text[k]) for k in ORDER_IDENTITIES], notes)
    paid_at = parse_instant(_required(text, "paid_at"), name="paid_at", tz=tz)
    status = text["status"] or "paid"
    values: dict[str, Any] = {
        "order_id": order_id,
        "line_no": line_no,
        "store_code": text["store_code"],
        "channel": text["channel"],
        "paid_at": paid_at,
        "amount": _amount(text),
        "status": status
        if status in ("paid", "refunded")
        else _enum(text, "status", ("paid", "refunded"), "paid"),
        "category": text["category"],
        "sku": text["sku"],
    }
    carried = dict(identities)  # one value per type: the fields are single columns
    for kind in ORDER_IDENTITIES:
        values[kind] = carried.get(kind)
    seed = MemberSeed(
        registered_at=paid_at, channel=values["channel"], store_code=values["store_code"]
    )
    record = SourceRecord(
        kind="order",
        key=f"{order_id}:{line_no}",
        identities=identities,
        seed=seed,
        order_id=order_id,
    )
    return ValidRow(record, values, content_hash(values), warnings, notes)


def _object(row: dict[str, Any], name: str) -> dict[str, Any]:
    raw = row.get(name)
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise RowRejected(f"{name}: not a JSON object") from None
    if not isinstance(raw, dict):
        raise RowRejected(f"{name}: not an object")
    return raw


def validate_event(row: dict[str, Any], *, tz: tzinfo) -> ValidRow:
    notes: list[str] = []
    event_id = _required(row, "event_id")
    kind = _required(row, "type")
    occurred_at = parse_instant(_required(row, "occurred_at"), name="occurred_at", tz=tz)
    raw_identities = _object(row, "identities")
    for name in raw_identities:
        if not EVENT_IDENTITY_TYPES.match(str(name)):
            raise RowRejected(f"identities: unknown identity type {name!r}")
    pairs = [
        (str(k), None if v in (None, "") else str(v).strip()) for k, v in raw_identities.items()
    ]
    identities, warnings = _identities(sorted(pairs, key=lambda p: p[0]), notes)
    values: dict[str, Any] = {
        "event_id": event_id,
        "type": kind,
        "occurred_at": occurred_at,
        "identities": dict(identities),
        "properties": _object(row, "properties"),
    }
    record = SourceRecord(
        kind="event",
        key=event_id,
        identities=identities,
        seed=MemberSeed(registered_at=occurred_at),
    )
    return ValidRow(record, values, content_hash(values), warnings, notes)


VALIDATORS = {"members": validate_member, "orders": validate_order, "events": validate_event}
REQUIRED_COLUMNS = {
    "members": set(),
    "orders": {"order_id", "paid_at", "amount"},
    "events": {"event_id", "type", "occurred_at"},
}
__all__ = ["MEMBER_NO", "VALIDATORS", "RowRejected", "ValidRow"]
