"""Use cases of tags: groups, manual tagging by operators and guides, rule-based auto tags.

A tag is written `group:name` everywhere (CLI, API, segment DSL, warehouse `member_tags`).

Decisions (where the issue is silent):
- A group is exclusive or multi-valued. Assigning a tag of an exclusive group removes the
  member's other tags of that group, whatever their source, in the same transaction.
- A rule tag (a tag with a segment-DSL `rule`) is computed: operators and guides cannot add or
  remove it by hand (`rule_tag_is_computed`); they change the rule instead.
- `recompute_rule_tags` syncs the warehouse, evaluates each rule with the segment compiler
  (`siyu.segments.compiler`) at the clock's instant, writes the differences (source `rule`),
  then syncs again so segments see the new tags. A member who already holds a rule tag by
  another source keeps that assignment. In an exclusive group, a member holding a manual tag of
  the group is left alone, and a member matching several rule tags gets the first one defined.
  Rules may use `tag` conditions on other rule tags: tags are evaluated in definition order.
  Saved-segment references (`{"segment": …}`) in rules resolve to the saved definitions.
- Audit: one row per manual add/remove (actor, member, tag, what an exclusive group replaced);
  one row per rule tag per recompute with the counts (not one per member: rules touch millions).
- A merged-away member id resolves to the surviving member (OneID §4.3).
- Every change bumps `members.updated_at`, which is how the warehouse sync sees tag changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.audit.service import record
from siyu.clock import Clock
from siyu.db import transaction
from siyu.identity.models import Member
from siyu.segments.compiler import compile_segment
from siyu.segments.dsl import Condition, parse_definition, references
from siyu.segments.errors import SegmentError
from siyu.segments.service import evaluate_member_ids, segment_resolver
from siyu.tags.errors import TagError, TagErrorCode
from siyu.tags.models import MemberTag, Tag, TagGroup
from siyu.tags.schemas import (
    MemberTagView,
    RecomputeResult,
    RuleTagOutcome,
    TagChange,
    TagGroupView,
    TagView,
)
from siyu.warehouse.duckdb import DuckDBWarehouse
from siyu.warehouse.sync import sync_all

CHUNK = 5_000  # ids per IN (...) list: below SQLite's bound-parameter limit
RULE_SOURCE = "rule"


def parse_tag(tag: str) -> tuple[str, str]:
    """`group:name` → (group, name); both parts non-empty, at most 64 characters, no colon."""
    group, sep, name = tag.partition(":")
    if not sep or not group.strip() or not name.strip() or ":" in name:
        raise TagError(TagErrorCode.INVALID_TAG, f"tag {tag!r}: expected `group:name`")
    if len(group) > 64 or len(name) > 64:
        raise TagError(TagErrorCode.INVALID_TAG, f"tag {tag!r}: group and name ≤ 64 characters")
    return group.strip(), name.strip()


# --- groups and tags ------------------------------------------------------------------------


def create_group(
    *, session_factory: sessionmaker[Session], clock: Clock, name: str, exclusive: bool, actor: str
) -> TagGroupView:
    """A new tag group; an existing name is an error (a group's kind is not changed silently)."""
    name = name.strip()
    if not name or ":" in name or len(name) > 64:
        raise TagError(TagErrorCode.INVALID_TAG, f"group {name!r}: 1–64 characters, no colon")
    with transaction(session_factory) as session:
        if session.scalar(sa.select(TagGroup.id).where(TagGroup.name == name)) is not None:
            raise TagError(TagErrorCode.ALREADY_EXISTS, f"tag group {name!r} already exists")
        now = clock.now()
        session.add(TagGroup(name=name, exclusive=exclusive, created_at=now))
        record(
            db_session=session,
            now=now,
            actor=actor,
            action="tag_group.create",
            entity_type="tag_group",
            entity_id=name,
            detail={"exclusive": exclusive},
        )
    return TagGroupView(name=name, exclusive=exclusive)


def define_tag(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    tag: str,
    actor: str,
    rule: dict[str, Any] | None = None,
) -> TagView:
    """A new tag in an existing group; with `rule` (segment DSL) it is an auto tag."""
    group_name, name = parse_tag(tag)
    with transaction(session_factory) as session:
        if rule is not None:
            check_rule(rule, now=clock.now(), session=session)
        group = _group(session, group_name, tag=tag)
        if _find_tag(session, group.id, name) is not None:
            raise TagError(TagErrorCode.ALREADY_EXISTS, f"tag {tag!r} already exists")
        now = clock.now()
        session.add(Tag(group_id=group.id, name=name, rule=rule, created_at=now))
        record(
            db_session=session,
            now=now,
            actor=actor,
            action="tag.define",
            entity_type="tag",
            entity_id=f"{group_name}:{name}",
            detail={"rule": rule},
        )
        return TagView(
            tag=f"{group_name}:{name}",
            group=group_name,
            name=name,
            exclusive=group.exclusive,
            rule=rule,
        )


def check_rule(rule: dict[str, Any], *, now: datetime, session: Session | None = None) -> Condition:
    """Validate a rule: a segment-DSL condition the compiler accepts; saved-segment refs
    (`{"segment": name}`) resolve through `session` and are refused without one."""
    try:
        condition = parse_definition(rule)
        if references(condition) and session is None:
            raise TagError(
                TagErrorCode.INVALID_RULE,
                "rule: segment references are not supported here; inline the condition",
            )
        resolve = segment_resolver(session) if session is not None else None
        compile_segment(condition, now=now, resolve=resolve)
    except SegmentError as error:
        raise TagError(TagErrorCode.INVALID_RULE, f"rule: {error}") from error
    return condition


def list_groups(*, session_factory: sessionmaker[Session]) -> list[TagGroupView]:
    with transaction(session_factory) as session:
        groups = sorted(session.execute(sa.select(TagGroup)).scalars(), key=lambda g: g.name)
        names = session.execute(sa.select(Tag.group_id, Tag.name).order_by(Tag.id)).all()
        return [
            TagGroupView(
                name=g.name,
                exclusive=g.exclusive,
                tags=[f"{g.name}:{n}" for gid, n in names if gid == g.id],
            )
            for g in groups
        ]


def list_tags(*, session_factory: sessionmaker[Session]) -> list[TagView]:
    """Every tag with its group, rule and number of members carrying it."""
    counts = (
        sa.select(MemberTag.tag_id, sa.func.count().label("n"))
        .group_by(MemberTag.tag_id)
        .subquery()
    )
    statement = (
        sa.select(Tag, TagGroup, counts.c.n)
        .join(TagGroup, TagGroup.id == Tag.group_id)
        .outerjoin(counts, counts.c.tag_id == Tag.id)
    )
    with transaction(session_factory) as session:
        return [
            TagView(
                tag=f"{group.name}:{tag.name}",
                group=group.name,
                name=tag.name,
                exclusive=group.exclusive,
                rule=tag.rule,
                members=int(n or 0),
            )
            for tag, group, n in sorted(
                session.execute(statement).all(), key=lambda row: (row[1].name, row[0].id)
            )
        ]


def member_tags(*, session_factory: sessionmaker[Session], member_id: int) -> list[MemberTagView]:
    """The member's current tags (a merged-away id shows the survivor's)."""
    with transaction(session_factory) as session:
        survivor = resolve_member(session, member_id)
        rows = session.execute(
            sa.select(MemberTag, Tag.name, TagGroup.name)
            .join(Tag, Tag.id == MemberTag.tag_id)
            .join(TagGroup, TagGroup.id == Tag.group_id)
            .where(MemberTag.member_id == survivor)
        ).all()
        return [
            MemberTagView(
                tag=f"{group}:{name}",
                source=link.source,
                tagged_by=link.tagged_by,
                tagged_at=link.tagged_at,
            )
            for link, name, group in sorted(rows, key=lambda row: (row[2], row[1]))
        ]


# --- manual tagging -------------------------------------------------------------------------


def tag_member(
    *, session_factory: sessionmaker[Session], clock: Clock, member_id: int, tag: str, actor: str
) -> TagChange:
    """An operator or guide puts a tag on a member (idempotent; audited when it changes)."""
    with transaction(session_factory) as session:
        survivor = resolve_member(session, member_id)
        found = _manual_tag(session, tag)
        return add_tag(
            db_session=session,
            now=clock.now(),
            member_id=survivor,
            tag_id=found.id,
            source="manual",
            actor=actor,
        )


def untag_member(
    *, session_factory: sessionmaker[Session], clock: Clock, member_id: int, tag: str, actor: str
) -> TagChange:
    """An operator or guide removes a tag from a member (no-op when absent)."""
    with transaction(session_factory) as session:
        survivor = resolve_member(session, member_id)
        found = _manual_tag(session, tag)
        change = TagChange(member_id=survivor)
        deleted = session.execute(
            sa.delete(MemberTag).where(
                MemberTag.member_id == survivor, MemberTag.tag_id == found.id
            )
        )
        if deleted.rowcount:  # type: ignore[attr-defined]
            now = clock.now()
            change.removed.append(tag)
            _touch(session, [survivor], now)
            record(
                db_session=session,
                now=now,
                actor=actor,
                action="tag.remove",
                entity_type="member",
                entity_id=survivor,
                detail={"tag": tag},
            )
        return change


def add_tag(
    *, db_session: Session, now: datetime, member_id: int, tag_id: int, source: str, actor: str
) -> TagChange:
    """Put a tag on a member inside the caller's transaction (never commits): replaces the
    member's other tags of an exclusive group, bumps `updated_at`, writes the audit row."""
    tag, group = db_session.execute(
        sa.select(Tag, TagGroup).join(TagGroup).where(Tag.id == tag_id)
    ).one()
    label = f"{group.name}:{tag.name}"
    change = TagChange(member_id=member_id)
    held = _held_in_group(db_session, member_id, group.id)
    if tag_id in held:
        return change
    if group.exclusive and held:
        db_session.execute(
            sa.delete(MemberTag).where(
                MemberTag.member_id == member_id, MemberTag.tag_id.in_(list(held))
            )
        )
        change.removed.extend(f"{group.name}:{name}" for name in held.values())
    db_session.add(
        MemberTag(member_id=member_id, tag_id=tag_id, source=source, tagged_by=actor, tagged_at=now)
    )
    change.added.append(label)
    _touch(db_session, [member_id], now)
    record(
        db_session=db_session,
        now=now,
        actor=actor,
        action="tag.add",
        entity_type="member",
        entity_id=member_id,
        detail={"tag": label, "source": source, "replaced": change.removed},
    )
    return change


def resolve_member(session: Session, member_id: int) -> int:
    """The surviving member id for any id (merged-away ids follow `merged_into_id`)."""
    seen: set[int] = set()
    current = member_id
    while current not in seen:
        seen.add(current)
        row = session.execute(
            sa.select(Member.id, Member.merged_into_id).where(Member.id == current)
        ).first()
        if row is None:
            raise TagError(TagErrorCode.MEMBER_NOT_FOUND, f"member {member_id}: no such member")
        if row.merged_into_id is None:
            return current
        current = int(row.merged_into_id)
    raise TagError(TagErrorCode.MEMBER_NOT_FOUND, f"member {member_id}: merge cycle")


# --- rule tags ------------------------------------------------------------------------------


def recompute_rule_tags(
    *,
    session_factory: sessionmaker[Session],
    warehouse: DuckDBWarehouse,
    clock: Clock,
    tz: tzinfo,
    only: Sequence[str] | None = None,
    actor: str = "system:rules",
) -> RecomputeResult:
    """Re-evaluate rule tags (all, or `only` these) at the clock's instant and apply the diff.
    Run on schedule and after every import."""
    sync_all(session_factory=session_factory, warehouse=warehouse, tz=tz)
    now = clock.now()
    result = RecomputeResult()
    with transaction(session_factory) as session:
        claimed: dict[int, set[int]] = {}  # exclusive group id -> members given a rule tag
        for tag, group in _rule_tags(session, only):
            desired = _evaluate(warehouse, tag, now=now, tz=tz, session=session)
            if group.exclusive:
                desired -= _manual_holders(session, group.id)
                desired -= claimed.setdefault(group.id, set())
                claimed[group.id] |= desired
            outcome = _apply_rule(session, tag, group, desired, now=now)
            record(
                db_session=session,
                now=now,
                actor=actor,
                action="tag.recompute",
                entity_type="tag",
                entity_id=outcome.tag,
                detail=outcome.model_dump(),
            )
            result.tags.append(outcome)
    sync_all(session_factory=session_factory, warehouse=warehouse, tz=tz)
    return result


def _rule_tags(session: Session, only: Sequence[str] | None) -> list[tuple[Tag, TagGroup]]:
    rows = [
        (tag, group)
        for tag, group in session.execute(
            sa.select(Tag, TagGroup).join(TagGroup).where(Tag.rule.is_not(None)).order_by(Tag.id)
        ).all()
        if tag.rule is not None  # JSON null is not SQL NULL on every backend
    ]
    if only is None:
        return rows
    wanted = {parse_tag(t) for t in only}
    known = {(g.name, t.name) for t, g in rows}
    for group_name, name in wanted - known:
        raise TagError(TagErrorCode.TAG_NOT_FOUND, f"no rule tag {group_name}:{name}")
    # An exclusive group is recomputed whole: its rule tags share members.
    groups = {g.id for t, g in rows if (g.name, t.name) in wanted}
    return [
        (t, g) for t, g in rows if g.id in groups and (g.exclusive or (g.name, t.name) in wanted)
    ]


def _evaluate(
    warehouse: DuckDBWarehouse, tag: Tag, *, now: datetime, tz: tzinfo, session: Session
) -> set[int]:
    condition = check_rule(dict(tag.rule or {}), now=now, session=session)
    return evaluate_member_ids(
        warehouse=warehouse,
        definition=condition,
        now=now,
        session=session,
        timezone=tz,  # type: ignore[arg-type]
    )


def _apply_rule(
    session: Session, tag: Tag, group: TagGroup, desired: set[int], *, now: datetime
) -> RuleTagOutcome:
    holders = dict(
        session.execute(
            sa.select(MemberTag.member_id, MemberTag.source).where(MemberTag.tag_id == tag.id)
        ).all()
    )
    desired &= _live_members(session, desired - holders.keys()) | holders.keys()
    to_add = sorted(desired - holders.keys())
    to_remove = sorted(
        m for m, source in holders.items() if source == RULE_SOURCE and m not in desired
    )
    if group.exclusive and to_add:
        for chunk in _chunks(to_add):  # their other rule tags of the group are replaced
            session.execute(
                sa.delete(MemberTag).where(
                    MemberTag.member_id.in_(chunk),
                    MemberTag.tag_id.in_(sa.select(Tag.id).where(Tag.group_id == group.id)),
                    MemberTag.source == RULE_SOURCE,
                )
            )
    for chunk in _chunks(to_remove):
        session.execute(
            sa.delete(MemberTag).where(MemberTag.tag_id == tag.id, MemberTag.member_id.in_(chunk))
        )
    if to_add:
        session.execute(
            sa.insert(MemberTag),
            [
                {
                    "member_id": m,
                    "tag_id": tag.id,
                    "source": RULE_SOURCE,
                    "tagged_by": "rule",
                    "tagged_at": now,
                }
                for m in to_add
            ],
        )
    _touch(session, [*to_add, *to_remove], now)
    return RuleTagOutcome(
        tag=f"{group.name}:{tag.name}",
        members=len(desired | {m for m in holders if m not in to_remove}),
        added=len(to_add),
        removed=len(to_remove),
    )


# --- helpers (never commit) -----------------------------------------------------------------


def _group(session: Session, name: str, *, tag: str | None = None) -> TagGroup:
    group = session.execute(sa.select(TagGroup).where(TagGroup.name == name)).scalar_one_or_none()
    if group is None:
        prefix = f"tag {tag!r}: " if tag else ""
        raise TagError(
            TagErrorCode.GROUP_NOT_FOUND, f"{prefix}no tag group {name!r}; create it first"
        )
    return group


def _find_tag(session: Session, group_id: int, name: str) -> Tag | None:
    return session.execute(
        sa.select(Tag).where(Tag.group_id == group_id, Tag.name == name)
    ).scalar_one_or_none()


def _manual_tag(session: Session, tag: str) -> Tag:
    group_name, name = parse_tag(tag)
    found = _find_tag(session, _group(session, group_name, tag=tag).id, name)
    if found is None:
        raise TagError(TagErrorCode.TAG_NOT_FOUND, f"no tag {tag!r}; define it first")
    if found.rule is not None:
        raise TagError(
            TagErrorCode.RULE_TAG_IS_COMPUTED,
            f"tag {tag!r} is computed by its rule; change the rule instead",
        )
    return found


def _held_in_group(session: Session, member_id: int, group_id: int) -> dict[int, str]:
    rows = session.execute(
        sa.select(Tag.id, Tag.name)
        .join(MemberTag, MemberTag.tag_id == Tag.id)
        .where(MemberTag.member_id == member_id, Tag.group_id == group_id)
    ).all()
    return {int(tag_id): name for tag_id, name in rows}


def _manual_holders(session: Session, group_id: int) -> set[int]:
    rows = session.execute(
        sa.select(MemberTag.member_id)
        .join(Tag, Tag.id == MemberTag.tag_id)
        .where(Tag.group_id == group_id, MemberTag.source != RULE_SOURCE)
    ).scalars()
    return {int(m) for m in rows}


def _live_members(session: Session, member_ids: Iterable[int]) -> set[int]:
    """Of these ids, those that exist and are not merged away (the warehouse may lag)."""
    live: set[int] = set()
    for chunk in _chunks(sorted(member_ids)):
        live.update(
            session.execute(
                sa.select(Member.id).where(Member.id.in_(chunk), Member.merged_into_id.is_(None))
            ).scalars()
        )
    return live


def _touch(session: Session, member_ids: Sequence[int], now: datetime) -> None:
    for chunk in _chunks(member_ids):
        session.execute(sa.update(Member).where(Member.id.in_(chunk)).values(updated_at=now))


def _chunks(values: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]
