"""Tables of the identity domain: members, source member records, identity values and merges."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, UTCDateTime


class Member(Base):
    """One real person (OneID). A merged-away member keeps its row and points at the survivor."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merged_into_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("members.id"), index=True, default=None
    )
    name: Mapped[str | None] = mapped_column(String(128), default=None)
    gender: Mapped[str] = mapped_column(String(1), default="U")
    birthday: Mapped[date | None] = mapped_column(Date, default=None)
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    store_code: Mapped[str | None] = mapped_column(String(32), index=True, default=None)
    channel: Mapped[str | None] = mapped_column(String(32), default=None)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class MemberRecord(Base):
    """One source row of member data (a POS member number, a mini-program account) as imported.

    Attributes of a member are derived from its records: for merged members the most recently
    updated non-empty value wins (DESIGN §4.4).
    """

    __tablename__ = "member_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    record_key: Mapped[str] = mapped_column(String(160), unique=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), index=True)
    member_no: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    unionid: Mapped[str | None] = mapped_column(String(64), default=None)
    openid: Mapped[str | None] = mapped_column(String(64), default=None)
    external_userid: Mapped[str | None] = mapped_column(String(64), default=None)
    name: Mapped[str | None] = mapped_column(String(128), default=None)
    gender: Mapped[str | None] = mapped_column(String(1), default=None)
    birthday: Mapped[date | None] = mapped_column(Date, default=None)
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    store_code: Mapped[str | None] = mapped_column(String(32), default=None)
    channel: Mapped[str | None] = mapped_column(String(32), default=None)
    row_hash: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Identity(Base):
    """An identity value (phone, unionid, openid:<appid>, external_userid, member_no, pos_id).

    A value that changed owner (a member edited their phone) is released: the old row keeps its
    observations and member, and the next record carrying the value starts a new current row.
    """

    __tablename__ = "identities"
    __table_args__ = (
        Index(
            "uq_identities_current",
            "type",
            "value",
            unique=True,
            sqlite_where=text("released_at IS NULL"),
            postgresql_where=text("released_at IS NULL"),
        ),
        # The few polluted values, found without reading every identity row (OneID rebuild).
        Index(
            "ix_identities_polluted",
            "id",
            sqlite_where=text("polluted"),
            postgresql_where=text("polluted"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    type: Mapped[str] = mapped_column(String(48))
    value: Mapped[str] = mapped_column(String(128))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), index=True)
    polluted: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class IdentityObservation(Base):
    """Which record brought which identity value: the evidence behind every merge.

    Member rows, events and WeCom contacts; an order line keeps its evidence in its own
    `*_identity_id` columns instead (one row per line on the import's hot path)."""

    __tablename__ = "identity_observations"
    __table_args__ = (
        UniqueConstraint("identity_id", "record_kind", "record_key"),
        Index("ix_identity_observations_record", "record_kind", "record_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Looked up through the unique constraint above, whose prefix it is (no index of its own).
    identity_id: Mapped[int] = mapped_column(BigId, ForeignKey("identities.id"))
    record_kind: Mapped[str] = mapped_column(String(16))  # member | order | event | wecom
    record_key: Mapped[str] = mapped_column(String(160))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IdentityMemberNo(Base):
    """A member_no seen on one record with this identity value: what the pollution guard counts.

    Append-only: a pair stays when the record that brought it changes, so a value once shared by
    too many member_nos stays polluted (docs/oneid.md rule 2)."""

    __tablename__ = "identity_member_nos"

    identity_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_no_identity_id: Mapped[int] = mapped_column(BigId, primary_key=True)


class MemberMerge(Base):
    """History of OneID merges: `merged_id` now resolves to `survivor_id` because of `via_*`."""

    __tablename__ = "member_merges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    survivor_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), index=True)
    merged_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), index=True)
    via_type: Mapped[str] = mapped_column(String(48))
    via_value: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(32), default="shared_identity")
    detail: Mapped[dict[str, object] | None] = mapped_column(JSON, default=None)
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime)
