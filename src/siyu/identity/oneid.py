"""OneID (DESIGN §4.3): records that share an identity value are one member.

Records are member rows (kind `member`, key = the member_no or first identity), order lines
(`order`, `order_id:line_no`) and events (`event`, event_id). Every identity value a record
carries is kept as evidence, so every merge can be explained and rebuilt: an IdentityObservation
for member rows and events, the line's own `*_identity_id` columns for an order line (the
caller writes them from `BatchOutcome.identity_of`). Every (value, member_no) pair a record
carries is kept once in `identity_member_nos`, which is what the pollution guard counts.

Rules decided here (the issue leaves them open):
- Connected components: two records are one member when they share a non-polluted value;
  lines of one order always belong to one member.
- Pollution: a value of any type but member_no that has co-occurred (on any record, ever) with
  more than `identity_max_member_nos_per_value` distinct member_nos is polluted. It stays on
  the records (observed) but never joins anything. Pollution is re-evaluated on every batch;
  when a value crosses the limit after it had already merged members, those members are
  regrouped without it (a split), so the result does not depend on batch boundaries. The
  pairs are never forgotten (a record that drops a value keeps its pair), so a placeholder
  phone stays polluted after some of its holders edit it away.
- Survivor: the oldest member id (lowest) of a component survives; the others get
  `merged_into_id`, a MemberMerge row naming the joining value, and their records, identities,
  tags and events move to the survivor.
- Phone changing owner: when a member row (same member_no) comes back with a different phone,
  the old value is *released* from that record — its observation is dropped and, when no other
  member row still carries it, its Identity row gets `released_at`. Older orders keep pointing
  at the old (released) generation, so a new person who later registers with the recycled
  number starts a new generation and is NOT merged into the previous owner. An edit never merges
  through the value it dropped; the new value joins like any other value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.identity.models import (
    Identity,
    IdentityMemberNo,
    IdentityObservation,
    Member,
    MemberMerge,
    MemberRecord,
)
from siyu.ingest.bulk import insert_returning_ids, insert_rows
from siyu.ingest.models import Event
from siyu.orders.models import OrderLine
from siyu.tags.models import MemberTag

Key = tuple[str, str]  # (identity type, value)
MEMBER_NO = "member_no"
CHUNK = 900  # values per IN (...) list, below SQLite's bound-parameter limit


@dataclass(frozen=True)
class MemberSeed:
    """Attributes a new member takes from the record that created it."""

    registered_at: datetime | None = None
    channel: str | None = None
    store_code: str | None = None
    name: str | None = None
    gender: str | None = None
    birthday: Any = None


@dataclass
class SourceRecord:
    kind: str
    key: str
    identities: tuple[Key, ...]
    seed: MemberSeed = field(default_factory=MemberSeed)
    order_id: str | None = None

    @property
    def member_nos(self) -> set[str]:
        return {value for kind, value in self.identities if kind == MEMBER_NO}


class UnionFind:
    """Disjoint sets over hashable nodes, path-halving; deterministic for a given input set."""

    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, node: Any) -> Any:
        parent = self.parent.setdefault(node, node)
        while parent != node:
            grand = self.parent[parent]
            self.parent[node] = grand
            node, parent = parent, grand
        return node

    def union(self, a: Any, b: Any) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            # The smaller root wins, so the shape never depends on the order of unions.
            low, high = sorted((root_a, root_b), key=repr)
            self.parent[high] = low


@dataclass(frozen=True)
class CurrentIdentity:
    id: int
    member_id: int
    polluted: bool


def table_of(model: Any) -> sa.Table:
    """The Core table of a model, typed for bulk statements."""
    return cast(sa.Table, model.__table__)


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def load_current(session: Session, keys: Iterable[Key]) -> dict[Key, CurrentIdentity]:
    """Current (unreleased) identity rows for the given values."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for kind, value in set(keys):
        by_type[kind].append(value)
    found: dict[Key, CurrentIdentity] = {}
    table = table_of(Identity)
    for kind, values in by_type.items():
        for chunk in _chunks(sorted(values)):
            rows = session.execute(
                sa.select(table.c.id, table.c.value, table.c.member_id, table.c.polluted).where(
                    table.c.type == kind, table.c.value.in_(chunk), table.c.released_at.is_(None)
                )
            )
            for row in rows:
                found[(kind, row.value)] = CurrentIdentity(row.id, row.member_id, row.polluted)
    return found


def member_nos_of(session: Session, identity_ids: Sequence[int]) -> dict[int, set[int]]:
    """The member_no identities seen on the same records as each identity (the pollution guard)."""
    pairs = table_of(IdentityMemberNo)
    result: dict[int, set[int]] = defaultdict(set)
    for chunk in _chunks(list(identity_ids)):
        statement = sa.select(pairs.c.identity_id, pairs.c.member_no_identity_id).where(
            pairs.c.identity_id.in_(chunk)
        )
        for identity_id, member_no_id in session.execute(statement):
            result[identity_id].add(member_no_id)
    return result


def survivor_of(session: Session, member_id: int) -> int:
    """Follow merged_into_id to the member that stands for this person today."""
    seen: set[int] = set()
    current = member_id
    while current not in seen:
        seen.add(current)
        target = session.scalar(sa.select(Member.merged_into_id).where(Member.id == current))
        if target is None:
            return current
        current = target
    return current


@dataclass
class BatchOutcome:
    """What resolving one batch did: record key → member id, and the bookkeeping counts."""

    member_of: dict[tuple[str, str], int] = field(default_factory=dict)
    identity_of: dict[Key, int] = field(default_factory=dict)  # the batch's values, current ids
    created_members: int = 0
    created: set[int] = field(default_factory=set)
    merges: int = 0
    newly_polluted: list[Key] = field(default_factory=list)
    to_regroup: set[int] = field(default_factory=set)  # split once the batch is stored


def resolve_batch(
    session: Session, *, records: Sequence[SourceRecord], now: datetime, max_member_nos: int
) -> BatchOutcome:
    """Attach every record of the batch to a member, creating and merging members as needed."""
    keys = {key for record in records for key in record.identities}
    current = load_current(session, keys)
    polluted = _polluted_keys(session, records, current, max_member_nos)
    order_owners = _order_owners(session, records)
    groups = _group(records, current, polluted, order_owners)
    outcome = BatchOutcome()
    outcome.newly_polluted = sorted(k for k in polluted if k in current and not current[k].polluted)
    for group in groups:
        if group.member_ids:
            _settle_group(session, group, now, outcome)
    _create_for(session, [g for g in groups if not g.member_ids], now, outcome)
    _write_identities(session, records, current, polluted, outcome, now)
    if outcome.newly_polluted:
        ids = [current[k].id for k in outcome.newly_polluted]
        session.execute(sa.update(Identity).where(Identity.id.in_(ids)).values(polluted=True))
        # The split itself must wait until the caller has stored this batch's records:
        # regrouping now would leave them out and attach them to the pre-split member.
        owners = {current[k].member_id for k in outcome.newly_polluted}
        outcome.to_regroup = {survivor_of(session, owner) for owner in owners}
    return outcome


def _polluted_keys(
    session: Session,
    records: Sequence[SourceRecord],
    current: dict[Key, CurrentIdentity],
    max_member_nos: int,
) -> set[Key]:
    # A member_no stands for itself by its identity id when it has one (as stored pairs do),
    # else by its value (it is new, so no stored pair can name it).
    seen: dict[Key, set[int | Key]] = defaultdict(set)
    for record in records:
        numbers = {
            current[(MEMBER_NO, number)].id
            if (MEMBER_NO, number) in current
            else (MEMBER_NO, number)
            for number in record.member_nos
        }
        for key in record.identities:
            if key[0] != MEMBER_NO:
                seen[key] |= numbers
    polluted = {key for key, ident in current.items() if ident.polluted}
    stored = member_nos_of(
        session, [current[k].id for k in seen if k in current and k not in polluted]
    )
    for key, member_nos in seen.items():
        if key in current and key not in polluted:
            member_nos = member_nos | stored.get(current[key].id, set())
        if len(member_nos) > max_member_nos:
            polluted.add(key)
    return polluted


def _order_owners(session: Session, records: Sequence[SourceRecord]) -> dict[str, int]:
    order_ids = sorted({r.order_id for r in records if r.order_id})
    owners: dict[str, int] = {}
    table = table_of(OrderLine)
    for chunk in _chunks(order_ids):
        statement = sa.select(table.c.order_id, table.c.member_id).where(
            table.c.order_id.in_(chunk)
        )
        for order_id, member_id in session.execute(statement):
            owners[order_id] = member_id
    return owners


@dataclass
class _Group:
    records: list[SourceRecord]
    member_ids: set[int]
    links: dict[int, Key]  # existing member id → a value that joined it to the group
    via_record: dict[int, str] = field(default_factory=dict)  # … carried by this new record


def _group(
    records: Sequence[SourceRecord],
    current: dict[Key, CurrentIdentity],
    polluted: set[Key],
    order_owners: dict[str, int],
) -> list[_Group]:
    finder = UnionFind()
    links: dict[int, Key] = {}
    via_record: dict[int, str] = {}
    for index, record in enumerate(records):
        node = ("r", index)
        finder.find(node)
        for key in record.identities:
            if key in polluted:
                continue
            known = current.get(key)
            finder.union(node, ("m", known.member_id) if known else ("k", key))
            if known:
                links.setdefault(known.member_id, key)
                via_record.setdefault(known.member_id, f"{record.kind}:{record.key}")
        if record.order_id:
            owner = order_owners.get(record.order_id)
            finder.union(node, ("m", owner) if owner else ("o", record.order_id))
            if owner:
                links.setdefault(owner, ("order_id", record.order_id))
                via_record.setdefault(owner, f"{record.kind}:{record.key}")
    grouped: dict[Any, _Group] = {}
    for index, record in enumerate(records):
        root = finder.find(("r", index))
        grouped.setdefault(root, _Group([], set(), {})).records.append(record)
    for node in list(finder.parent):
        if node[0] == "m" and finder.find(node) in grouped:
            group = grouped[finder.find(node)]
            group.member_ids.add(node[1])
            group.links[node[1]] = links[node[1]]
            group.via_record[node[1]] = via_record[node[1]]
    return list(grouped.values())


def _settle_group(session: Session, group: _Group, now: datetime, outcome: BatchOutcome) -> None:
    survivor, *merged = sorted(group.member_ids)
    for member_id in merged:
        merge_members(
            session,
            survivor=survivor,
            merged=member_id,
            via=group.links[member_id],
            now=now,
            record=group.via_record[member_id],
        )
        outcome.merges += 1
    for record in group.records:
        outcome.member_of[(record.kind, record.key)] = survivor


def _create_for(
    session: Session, groups: list[_Group], now: datetime, outcome: BatchOutcome
) -> None:
    """One new member per group that matched nobody, in one bulk INSERT … RETURNING."""
    ids = create_members(session, seeds=[_earliest_seed(g.records) for g in groups], now=now)
    outcome.created_members += len(ids)
    outcome.created.update(ids)
    for group, member_id in zip(groups, ids, strict=True):
        for record in group.records:
            outcome.member_of[(record.kind, record.key)] = member_id


def _earliest_seed(records: Sequence[SourceRecord]) -> MemberSeed:
    members = [r.seed for r in records if r.kind == "member"] or [r.seed for r in records]
    dated = [s for s in members if s.registered_at is not None]
    return min(dated, key=lambda s: s.registered_at) if dated else members[0]  # type: ignore[arg-type, return-value]


def _seed_values(seed: MemberSeed, now: datetime) -> dict[str, Any]:
    return {
        "name": seed.name,
        "gender": seed.gender or "U",
        "birthday": seed.birthday,
        "registered_at": seed.registered_at,
        "store_code": seed.store_code,
        "channel": seed.channel,
        "created_at": now,
        "updated_at": now,
    }


def create_member(session: Session, *, seed: MemberSeed, now: datetime) -> int:
    return create_members(session, seeds=[seed], now=now)[0]


def create_members(session: Session, *, seeds: Sequence[MemberSeed], now: datetime) -> list[int]:
    if not seeds:
        return []
    values = [_seed_values(seed, now) for seed in seeds]
    return insert_returning_ids(session.connection(), table_of(Member), values)


def merge_members(
    session: Session,
    *,
    survivor: int,
    merged: int,
    via: Key,
    now: datetime,
    reason: str = "shared_identity",
    record: str | None = None,
) -> None:
    """Fold `merged` into `survivor`: its records, identities, tags and events follow.

    `via` is the value the merged member shared with the component; `record` names the record
    that brought the bridge (e.g. `order:O1:1`), kept in the merge's detail for explanations."""
    for table in (table_of(MemberRecord), table_of(OrderLine), table_of(Event), table_of(Identity)):
        session.execute(
            sa.update(table).where(table.c.member_id == merged).values(member_id=survivor)
        )
    tags = table_of(MemberTag)
    kept = sa.select(tags.c.tag_id).where(tags.c.member_id == survivor)
    session.execute(sa.delete(tags).where(tags.c.member_id == merged, tags.c.tag_id.in_(kept)))
    session.execute(sa.update(tags).where(tags.c.member_id == merged).values(member_id=survivor))
    session.execute(
        sa.update(Member).where(Member.merged_into_id == merged).values(merged_into_id=survivor)
    )
    session.execute(
        sa.update(Member).where(Member.id == merged).values(merged_into_id=survivor, updated_at=now)
    )
    _fill_survivor(session, survivor=survivor, merged=merged, now=now)
    session.execute(
        sa.insert(MemberMerge).values(
            survivor_id=survivor,
            merged_id=merged,
            via_type=via[0],
            via_value=via[1],
            reason=reason,
            detail={"record": record} if record else None,
            merged_at=now,
        )
    )


def _fill_survivor(session: Session, *, survivor: int, merged: int, now: datetime) -> None:
    """Empty attributes of the survivor take the merged member's; the earliest registration wins."""
    old = session.execute(sa.select(table_of(Member)).where(Member.id == merged)).one()
    new = session.execute(sa.select(table_of(Member)).where(Member.id == survivor)).one()
    values: dict[str, Any] = {"updated_at": now}
    for column in ("name", "birthday", "store_code", "channel"):
        if getattr(new, column) is None and getattr(old, column) is not None:
            values[column] = getattr(old, column)
    if new.gender == "U" and old.gender not in (None, "U"):
        values["gender"] = old.gender
    if old.registered_at is not None and (
        new.registered_at is None or old.registered_at < new.registered_at
    ):
        values["registered_at"] = old.registered_at
    session.execute(sa.update(Member).where(Member.id == survivor).values(**values))


def _write_identities(
    session: Session,
    records: Sequence[SourceRecord],
    current: dict[Key, CurrentIdentity],
    polluted: set[Key],
    outcome: BatchOutcome,
    now: datetime,
) -> None:
    """Create unseen values, point changed ones at their survivor, and log every observation."""
    owner_of_new: dict[Key, int] = {}
    for record in records:
        member_id = outcome.member_of[(record.kind, record.key)]
        for key in record.identities:
            if key not in current:
                owner_of_new.setdefault(key, member_id)
    new_rows: list[dict[str, Any]] = [
        {
            "type": k[0],
            "value": k[1],
            "member_id": m,
            "polluted": k in polluted,
            "first_seen_at": now,
        }
        for k, m in sorted(owner_of_new.items())
    ]
    if new_rows:
        # Existing values already moved with their member in merge_members.
        inserted = insert_returning_ids(session.connection(), table_of(Identity), new_rows)
        for row, identity_id in zip(new_rows, inserted, strict=True):
            key = (row["type"], row["value"])
            current[key] = CurrentIdentity(identity_id, row["member_id"], row["polluted"])
    outcome.identity_of = {key: current[key].id for record in records for key in record.identities}
    observations = {
        (current[key].id, record.kind, record.key)
        for record in records
        if record.kind != "order"  # a line keeps its evidence in its own columns
        for key in record.identities
    }
    _observe(session, observations, now)
    pairs = {
        (current[key].id, current[(MEMBER_NO, number)].id)
        for record in records
        for number in record.member_nos
        for key in record.identities
        if key[0] != MEMBER_NO
    }
    insert_rows(
        session.connection(),
        table_of(IdentityMemberNo),
        [{"identity_id": i, "member_no_identity_id": n} for i, n in sorted(pairs)],
        skip_conflicts=True,
    )


def _observe(session: Session, observations: set[tuple[int, str, str]], now: datetime) -> None:
    if not observations:
        return
    table = table_of(IdentityObservation)
    rows = [
        {"identity_id": i, "record_kind": kind, "record_key": key, "observed_at": now}
        for i, kind, key in sorted(observations)
    ]
    insert_rows(session.connection(), table, rows, skip_conflicts=True)


def release(
    session: Session, *, record_kind: str, record_key: str, keys: Iterable[Key], now: datetime
) -> None:
    """A record stopped carrying these values (a member edited their phone): let them go."""
    current = load_current(session, keys)
    obs = table_of(IdentityObservation)
    for ident in current.values():
        session.execute(
            sa.delete(obs).where(
                obs.c.identity_id == ident.id,
                obs.c.record_kind == record_kind,
                obs.c.record_key == record_key,
            )
        )
        still_claimed = session.scalar(
            sa.select(sa.func.count()).where(
                obs.c.identity_id == ident.id, obs.c.record_kind == "member"
            )
        )
        if not still_claimed:
            session.execute(
                sa.update(Identity).where(Identity.id == ident.id).values(released_at=now)
            )
