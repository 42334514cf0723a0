"""Regrouping: recompute OneID components over records already stored.

Used by `siyu identity rebuild` (every member, pollution recounted from
`identity_member_nos`) and by the incremental path when a value becomes polluted after it had
merged members (only the owners of that value, split without it). A component keeps its lowest
free member id; a component left without one (a split) gets a new member copied from the
member it came from. The warehouse follows merges through `member_merges`; a split is only
reflected there after a warehouse rebuild, because the sync copies order lines once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.identity.models import (
    Identity,
    IdentityMemberNo,
    IdentityObservation,
    Member,
    MemberRecord,
)
from siyu.identity.oneid import (
    Key,
    MemberSeed,
    UnionFind,
    _chunks,
    create_member,
    merge_members,
    table_of,
)
from siyu.ingest.models import Event
from siyu.orders.models import OrderLine


@dataclass
class _Stored:
    kind: str
    key: str
    row_id: int
    member_id: int
    order_id: str | None
    evidence: tuple[int, ...] = ()  # an order line's identity ids (its own columns)


@dataclass
class RegroupOutcome:
    records: int = 0
    merges: int = 0
    splits: int = 0
    polluted: int = 0


def regroup(
    session: Session,
    *,
    member_ids: Iterable[int] | None,
    now: datetime,
    max_member_nos: int,
    recompute_pollution: bool = False,
) -> RegroupOutcome:
    """Recompute the components of these members' records (all members when None)."""
    full = member_ids is None
    stored = _stored_records(session, None if member_ids is None else sorted(set(member_ids)))
    observed = _observations_of(session, stored, full=full)
    info = _identity_info(session, {i for ids in observed.values() for i in ids}, full=full)
    outcome = RegroupOutcome(records=len(stored))
    if recompute_pollution:
        polluted = _recount_pollution(session, max_member_nos)
        info = {i: (kind, value, i in polluted) for i, (kind, value, _) in info.items()}
    else:
        polluted = {i for i, (_, _, flag) in info.items() if flag}
    outcome.polluted = len(polluted)
    finder = UnionFind()
    for index, record in enumerate(stored):
        finder.find(index)
        for identity_id in observed.get((record.kind, record.key), ()):
            if identity_id not in polluted:
                finder.union(index, ("i", identity_id))
        if record.order_id:
            finder.union(index, ("o", record.order_id))
    components: dict[Any, list[int]] = defaultdict(list)
    for index in range(len(stored)):
        components[finder.find(index)].append(index)
    ordered = sorted(
        components.values(), key=lambda idx: (min(stored[i].member_id for i in idx), idx[0])
    )
    _assign(session, stored, observed, info, ordered, now, outcome)
    return outcome


def _stored_records(session: Session, member_ids: list[int] | None) -> list[_Stored]:
    records, orders, events = table_of(MemberRecord), table_of(OrderLine), table_of(Event)
    order_key = orders.c.order_id + ":" + sa.cast(orders.c.line_no, sa.String)
    no_evidence = (sa.null(), sa.null(), sa.null())
    sources: list[tuple[str, sa.Table, Any, Any, tuple[Any, ...]]] = [
        ("member", records, records.c.record_key, sa.null(), no_evidence),
        ("order", orders, order_key, orders.c.order_id, line_evidence_columns(orders)),
        ("event", events, events.c.event_id, sa.null(), no_evidence),
    ]
    stored: list[_Stored] = []
    for kind, table, key_column, order_column, evidence in sources:
        base = sa.select(key_column, table.c.id, table.c.member_id, order_column, *evidence).where(
            table.c.member_id.is_not(None)
        )
        chunks = [None] if member_ids is None else list(_chunks(member_ids))
        for chunk in chunks:
            statement = base if chunk is None else base.where(table.c.member_id.in_(chunk))
            for key, row_id, member_id, order_id, *ids in session.execute(
                statement.order_by(table.c.id)
            ):
                found = tuple(sorted(i for i in ids if i is not None))
                stored.append(_Stored(kind, key, row_id, member_id, order_id, found))
    return stored


def line_evidence_columns(orders: sa.Table) -> tuple[Any, ...]:
    """The identity id columns of an order line (docs/oneid.md: a line's evidence)."""
    return (
        orders.c.member_no_identity_id,
        orders.c.phone_identity_id,
        orders.c.unionid_identity_id,
    )


def _observations_of(
    session: Session, stored: list[_Stored], *, full: bool
) -> dict[tuple[str, str], list[int]]:
    """Identity ids per record; a full rebuild scans the table once instead of IN lists.

    Order lines bring their own (`_Stored.evidence`); other records' are observation rows."""
    obs = table_of(IdentityObservation)
    observed: dict[tuple[str, str], list[int]] = defaultdict(list)
    for record in stored:
        if record.evidence:
            observed[(record.kind, record.key)] = list(record.evidence)
    stored = [record for record in stored if record.kind != "order"]
    if full:
        wanted = {(record.kind, record.key) for record in stored}
        statement = sa.select(obs.c.record_kind, obs.c.record_key, obs.c.identity_id)
        for kind, key, identity_id in session.execute(statement.order_by(obs.c.identity_id)):
            if (kind, key) in wanted:  # e.g. not observations of records since erased
                observed[(kind, key)].append(identity_id)
        return observed
    by_kind: dict[str, list[str]] = defaultdict(list)
    for record in stored:
        by_kind[record.kind].append(record.key)
    for kind, keys in by_kind.items():
        for chunk in _chunks(keys):
            statement = sa.select(obs.c.record_key, obs.c.identity_id).where(
                obs.c.record_kind == kind, obs.c.record_key.in_(chunk)
            )
            for key, identity_id in session.execute(statement.order_by(obs.c.identity_id)):
                observed[(kind, key)].append(identity_id)
    return observed


def _identity_info(
    session: Session, ids: set[int], *, full: bool
) -> dict[int, tuple[str, str, bool]]:
    table = table_of(Identity)
    info: dict[int, tuple[str, str, bool]] = {}
    if full:
        statement = sa.select(table.c.id, table.c.type, table.c.value, table.c.polluted)
        for row in session.execute(statement):
            if row.id in ids:
                info[row.id] = (row.type, row.value, bool(row.polluted))
        return info
    for chunk in _chunks(sorted(ids)):
        statement = sa.select(table.c.id, table.c.type, table.c.value, table.c.polluted).where(
            table.c.id.in_(chunk)
        )
        for row in session.execute(statement):
            info[row.id] = (row.type, row.value, bool(row.polluted))
    return info


def _identity_owners(session: Session, ids: Iterable[int]) -> dict[int, int]:
    table = table_of(Identity)
    owners: dict[int, int] = {}
    for chunk in _chunks(sorted(set(ids))):
        statement = sa.select(table.c.id, table.c.member_id).where(table.c.id.in_(chunk))
        owners.update((row.id, row.member_id) for row in session.execute(statement))
    return owners


def _recount_pollution(session: Session, max_member_nos: int) -> set[int]:
    """Values seen with more than `max_member_nos` member_nos (`identity_member_nos`) are
    polluted; every other value is not."""
    pairs = table_of(IdentityMemberNo)
    statement = (
        sa.select(pairs.c.identity_id)
        .group_by(pairs.c.identity_id)
        .having(sa.func.count() > max_member_nos)
    )
    polluted = set(session.scalars(statement))
    table = table_of(Identity)
    session.execute(sa.update(table).values(polluted=False))
    for chunk in _chunks(sorted(polluted)):
        session.execute(sa.update(table).where(table.c.id.in_(chunk)).values(polluted=True))
    return polluted


def _assign(
    session: Session,
    stored: list[_Stored],
    observed: dict[tuple[str, str], list[int]],
    info: dict[int, tuple[str, str, bool]],
    components: list[list[int]],
    now: datetime,
    outcome: RegroupOutcome,
) -> None:
    """Give each component one member: its lowest free member id, or a new member on a split."""
    taken: set[int] = set()
    target_of: list[int] = []
    for indexes in components:
        candidates = sorted({stored[i].member_id for i in indexes} - taken)
        if candidates:
            target = candidates[0]
        else:
            origin = stored[indexes[0]].member_id
            target = _copy_member(session, origin, now)
            outcome.splits += 1
        taken.add(target)
        target_of.append(target)
    moves = _Moves()
    for indexes, target in zip(components, target_of, strict=True):
        for member_id in sorted({stored[i].member_id for i in indexes} - taken):
            via = _shared_value(stored, observed, info, indexes, member_id)
            merge_members(session, survivor=target, merged=member_id, via=via, now=now)
            taken.add(member_id)
            outcome.merges += 1
        moves.plan([stored[i] for i in indexes], target, observed, info)
    moves.apply(session)


def _shared_value(
    stored: list[_Stored],
    observed: dict[tuple[str, str], list[int]],
    info: dict[int, tuple[str, str, bool]],
    indexes: list[int],
    member_id: int,
) -> Key:
    mine = {
        i
        for x in indexes
        if stored[x].member_id == member_id
        for i in observed.get((stored[x].kind, stored[x].key), ())
    }
    theirs = {
        i
        for x in indexes
        if stored[x].member_id != member_id
        for i in observed.get((stored[x].kind, stored[x].key), ())
    }
    shared = sorted(i for i in mine & theirs if not info[i][2])
    if shared:
        return info[shared[0]][0], info[shared[0]][1]
    orders = sorted({str(stored[x].order_id) for x in indexes if stored[x].order_id})
    return ("order_id", str(orders[0])) if orders else ("component", "rebuild")


def _copy_member(session: Session, origin: int, now: datetime) -> int:
    row = session.execute(sa.select(table_of(Member)).where(Member.id == origin)).one()
    seed = MemberSeed(
        registered_at=row.registered_at,
        channel=row.channel,
        store_code=row.store_code,
        name=row.name,
        gender=row.gender,
        birthday=row.birthday,
    )
    return create_member(session, seed=seed, now=now)


class _Moves:
    """Record and identity rows that change member, written in one statement per table.

    One UPDATE per component would make a rebuild of millions of components take hours; most
    components move nothing, so only the rows whose member differs are written."""

    def __init__(self) -> None:
        self.records: dict[str, list[dict[str, int]]] = defaultdict(list)
        self.identities: dict[int, int] = {}

    def plan(
        self,
        records: list[_Stored],
        target: int,
        observed: dict[tuple[str, str], list[int]],
        info: dict[int, tuple[str, str, bool]],
    ) -> None:
        for record in records:
            for identity_id in observed.get((record.kind, record.key), ()):
                if not info[identity_id][2]:  # a polluted value stays with its first owner
                    self.identities[identity_id] = target
            if record.member_id != target:
                self.records[record.kind].append({"rid": record.row_id, "mid": target})
                record.member_id = target

    def apply(self, session: Session) -> None:
        tables = {
            "member": table_of(MemberRecord),
            "order": table_of(OrderLine),
            "event": table_of(Event),
        }
        connection = session.connection()
        for kind, params in self.records.items():
            table = tables[kind]
            statement = (
                sa.update(table)
                .where(table.c.id == sa.bindparam("rid"))
                .values(member_id=sa.bindparam("mid"))
            )
            connection.execute(statement, params)
        # merge_members already moved whole members' identities; re-read before comparing.
        owners = _identity_owners(session, self.identities)
        changed = [
            {"iid": identity_id, "mid": target}
            for identity_id, target in sorted(self.identities.items())
            if owners.get(identity_id) != target
        ]
        if changed:
            table = table_of(Identity)
            statement = (
                sa.update(table)
                .where(table.c.id == sa.bindparam("iid"))
                .values(member_id=sa.bindparam("mid"))
            )
            connection.execute(statement, changed)
