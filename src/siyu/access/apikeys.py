"""API keys for integrations: scoped, hashed at rest, shown once, rotated and revoked.

Decisions:
- A key looks like `sk_<prefix>_<secret>`; only the prefix (to find the row) and a SHA-256 of
  the whole key are stored. SHA-256 rather than argon2: the secret is 256 random bits, so a
  slow hash adds nothing and would cost every API request tens of milliseconds.
- Scopes are `<verb>:<area>` (read:members, write:events, redeem:coupons, …) or `*`. A key
  also carries a role (and a staff member or region) so data scoping applies to it exactly as
  to a console user: a guide's key reads only that guide's members.
- `last_used_at` is written at most once a minute per key, so a busy integration does not turn
  every read into a write.
- Rotation revokes the old key and issues a successor with the same name, scopes and role;
  both events are audited, and a revoked or rotated key is refused at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.access.errors import AccessError, AccessErrorCode
from siyu.access.models import ApiKey
from siyu.access.schemas import Role
from siyu.access.scope import Viewer
from siyu.audit import service as audit_service
from siyu.clock import Clock
from siyu.db import transaction

AREAS = (
    "members", "events", "reports", "tags", "journeys", "delivery", "coupons", "points",
    "tasks", "staff", "privacy", "keys", "segments", "profiles", "wecom", "growth",
)  # fmt: skip
VERBS = ("read", "write", "redeem", "erase", "export", "reveal")
_SCOPE = re.compile(r"^(\*|(" + "|".join(VERBS) + r"):(" + "|".join(AREAS) + r"))$")
_KEY = re.compile(r"^sk_([A-Za-z0-9]{8})_([A-Za-z0-9_-]{20,})$")
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class ApiKeyRead:
    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class ApiPrincipal:
    key_id: int
    name: str
    scopes: frozenset[str]
    viewer: Viewer

    def allows(self, scope: str) -> bool:
        return "*" in self.scopes or scope in self.scopes


def create_api_key(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    name: str,
    scopes: list[str],
    actor: str,
    role: Role = Role.HQ,
    staff_id: int | None = None,
    region: str | None = None,
) -> tuple[ApiKeyRead, str]:
    """Issue a key; the returned secret is never stored and cannot be shown again."""
    _check(name=name, scopes=scopes, role=role)
    now = clock.now()
    with transaction(session_factory) as session:
        row, secret = _issue(
            session, name=name, scopes=scopes, role=role, staff_id=staff_id, region=region,
            actor=actor, now=now,
        )  # fmt: skip
        _audit(session, now=now, actor=actor, action="apikey.create", row=row)
        return _read(row), secret


def rotate_api_key(
    *, session_factory: sessionmaker[Session], clock: Clock, key_id: int, actor: str
) -> tuple[ApiKeyRead, str]:
    """Revoke a key and issue its successor with the same name, scopes and role."""
    now = clock.now()
    with transaction(session_factory) as session:
        old = _live(session, key_id)
        new, secret = _issue(
            session, name=old.name, scopes=list(old.scopes), role=Role(old.role),
            staff_id=old.staff_id, region=old.region, actor=actor, now=now,
        )  # fmt: skip
        old.revoked_at, old.replaced_by_id = now, new.id
        _audit(session, now=now, actor=actor, action="apikey.rotate", row=old)
        return _read(new), secret


def revoke_api_key(
    *, session_factory: sessionmaker[Session], clock: Clock, key_id: int, actor: str
) -> ApiKeyRead:
    now = clock.now()
    with transaction(session_factory) as session:
        row = _live(session, key_id)
        row.revoked_at = now
        _audit(session, now=now, actor=actor, action="apikey.revoke", row=row)
        return _read(row)


def list_api_keys(*, session_factory: sessionmaker[Session]) -> list[ApiKeyRead]:
    with session_factory() as session:
        return [_read(r) for r in session.scalars(sa.select(ApiKey).order_by(ApiKey.id))]


def authenticate_api_key(
    *, session_factory: sessionmaker[Session], clock: Clock, secret: str
) -> ApiPrincipal:
    """The principal behind a presented key, or AccessError(INVALID_API_KEY)."""
    match = _KEY.match(secret)
    if match is None:
        raise _invalid()
    now = clock.now()
    with transaction(session_factory) as session:
        row = session.scalar(sa.select(ApiKey).where(ApiKey.prefix == match.group(1)))
        if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
            raise _invalid()
        if row.revoked_at is not None:
            raise AccessError(AccessErrorCode.API_KEY_REVOKED, "this API key has been revoked")
        if row.last_used_at is None or now - row.last_used_at >= _TOUCH_EVERY:
            row.last_used_at = now
        viewer = Viewer(
            role=Role(row.role), actor=f"apikey:{row.name}", staff_id=row.staff_id,
            region=row.region,
        )  # fmt: skip
        return ApiPrincipal(
            key_id=row.id, name=row.name, scopes=frozenset(row.scopes), viewer=viewer
        )


def _issue(
    session: Session,
    *,
    name: str,
    scopes: list[str],
    role: Role,
    staff_id: int | None,
    region: str | None,
    actor: str,
    now: datetime,
) -> tuple[ApiKey, str]:
    prefix = secrets.token_hex(4)
    secret = f"sk_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        name=name, prefix=prefix, secret_hash=_hash(secret), scopes=sorted(set(scopes)),
        role=role.value, staff_id=staff_id, region=region, created_by=actor, created_at=now,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row, secret


def _check(*, name: str, scopes: list[str], role: Role) -> None:
    if not re.match(r"^[A-Za-z0-9_.@ -]{2,64}$", name):
        raise AccessError(AccessErrorCode.INVALID_API_KEY_SPEC, f"key name {name!r}: 2-64 chars")
    bad = [s for s in scopes if not _SCOPE.match(s)]
    if bad or not scopes:
        raise AccessError(
            AccessErrorCode.INVALID_API_KEY_SPEC,
            f"scopes {bad or scopes}: use `*` or <{'|'.join(VERBS)}>:<{'|'.join(AREAS)}>",
        )
    if role is Role.ANALYST and any(not s.startswith("read:") for s in scopes):
        raise AccessError(AccessErrorCode.INVALID_API_KEY_SPEC, "an analyst key is read-only")


def _live(session: Session, key_id: int) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise AccessError(AccessErrorCode.UNKNOWN_API_KEY, f"no API key {key_id}")
    if row.revoked_at is not None:
        raise AccessError(AccessErrorCode.API_KEY_REVOKED, f"API key {key_id} is already revoked")
    return row


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _invalid() -> AccessError:
    return AccessError(AccessErrorCode.INVALID_API_KEY, "missing or invalid API key")


def _audit(session: Session, *, now: datetime, actor: str, action: str, row: ApiKey) -> None:
    audit_service.record(
        db_session=session, now=now, actor=actor, action=action, entity_type="api_key",
        entity_id=row.id, detail={"name": row.name, "prefix": row.prefix, "scopes": row.scopes},
    )  # fmt: skip


def _read(row: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=row.id, name=row.name, prefix=row.prefix, scopes=tuple(row.scopes),
        role=Role(row.role), created_at=row.created_at, last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )  # fmt: skip
