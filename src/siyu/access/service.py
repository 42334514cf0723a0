"""Console users: create them, check their passwords, lock them out after repeated failures.

Decisions:
- Passwords are hashed with argon2id (argon2-cffi defaults); hashes are re-computed on login
  when the library's parameters have been raised since the hash was made.
- After `MAX_FAILED_LOGINS` consecutive failures the account is locked for `LOCKOUT`; while
  locked even the right password is refused, so a brute force learns nothing. The counter
  resets on a successful login and when a lock has run out.
- An unknown username costs the same argon2 verification as a known one (no user enumeration
  by timing) and is reported with the same error as a wrong password.
- Every login attempt, successful or not, writes an audit row (issue #8 item 4).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from siyu.access.errors import AccessError, AccessErrorCode
from siyu.access.models import User
from siyu.access.schemas import Role, UserRead
from siyu.audit import service as audit_service
from siyu.clock import Clock
from siyu.db import transaction

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 8
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
_hasher = PasswordHasher()
# Verified against when the username is unknown, so both paths cost one argon2 verification.
_DUMMY_HASH = _hasher.hash("siyu-no-such-user")


def create_user(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    username: str,
    password: str,
    role: Role,
    display_name: str | None = None,
    staff_id: int | None = None,
    region: str | None = None,
    actor: str = "system",
) -> UserRead:
    """Add a console user with an argon2-hashed password."""
    _check_new_user(username=username, password=password)
    now = clock.now()
    with transaction(session_factory) as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise AccessError(AccessErrorCode.USERNAME_TAKEN, f"user {username!r} already exists")
        user = User(
            username=username,
            display_name=display_name or username,
            password_hash=_hasher.hash(password),
            role=Role(role).value,
            staff_id=staff_id,
            region=region,
            active=True,
            failed_logins=0,
            created_at=now,
        )
        session.add(user)
        session.flush()
        audit_service.record(
            db_session=session,
            now=now,
            actor=actor,
            action="user.create",
            entity_type="user",
            entity_id=user.id,
            detail={"username": username, "role": user.role},
        )
        return UserRead.model_validate(user)


def _check_new_user(*, username: str, password: str) -> None:
    if not _USERNAME.match(username):
        raise AccessError(
            AccessErrorCode.INVALID_USER,
            f"username {username!r}: use 2-64 letters, digits or . _ @ -",
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccessError(
            AccessErrorCode.INVALID_USER,
            f"password: at least {MIN_PASSWORD_LENGTH} characters",
        )


def authenticate(
    *, session_factory: sessionmaker[Session], clock: Clock, username: str, password: str
) -> UserRead:
    """Check a login; count failures, lock after five, audit every attempt."""
    now = clock.now()
    # The refusal is raised after the transaction commits: the failure count and the audit
    # row of a refused login must survive it.
    with transaction(session_factory) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            _verify(_DUMMY_HASH, password)
            _audit_login(session, now=now, username=username, user_id=None, outcome="unknown_user")
            outcome: UserRead | AccessError = _invalid_credentials()
        else:
            outcome = _attempt(session, user=user, password=password, now=now)
    if isinstance(outcome, AccessError):
        raise outcome
    return outcome


def _attempt(
    session: Session, *, user: User, password: str, now: datetime
) -> UserRead | AccessError:
    refusal = _refusal(user, now=now)
    if refusal is None and not _verify(user.password_hash, password):
        _count_failure(session, user=user, now=now)
        refusal = _invalid_credentials()
    if refusal is not None:
        _audit_login(
            session, now=now, username=user.username, user_id=user.id, outcome=refusal.code
        )
        return refusal
    _record_success(session, user=user, password=password, now=now)
    _audit_login(session, now=now, username=user.username, user_id=user.id, outcome="success")
    return UserRead.model_validate(user)


def _refusal(user: User, *, now: datetime) -> AccessError | None:
    if not user.active:
        return AccessError(AccessErrorCode.ACCOUNT_INACTIVE, "this account is disabled")
    if user.locked_until is not None and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60))
        return AccessError(
            AccessErrorCode.ACCOUNT_LOCKED,
            f"too many failed logins: try again in {minutes} min",
        )
    return None


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _invalid_credentials() -> AccessError:
    return AccessError(AccessErrorCode.INVALID_CREDENTIALS, "wrong username or password")


def _count_failure(session: Session, *, user: User, now: datetime) -> None:
    # A lock that has run out starts a fresh count; the increment is done in SQL so that two
    # concurrent wrong guesses both count.
    if user.locked_until is not None and user.locked_until <= now:
        session.execute(
            update(User).where(User.id == user.id).values(failed_logins=0, locked_until=None)
        )
    session.execute(
        update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1)
    )
    session.refresh(user)
    if user.failed_logins >= MAX_FAILED_LOGINS:
        user.locked_until = now + LOCKOUT
        user.failed_logins = 0


def _record_success(session: Session, *, user: User, password: str, now: datetime) -> None:
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)


def _audit_login(
    session: Session, *, now: datetime, username: str, user_id: int | None, outcome: str
) -> None:
    audit_service.record(
        db_session=session,
        now=now,
        actor=username,
        action="user.login" if outcome == "success" else "user.login_failed",
        entity_type="user",
        entity_id=user_id,
        detail={"outcome": outcome},
    )


def get_user(*, session_factory: sessionmaker[Session], user_id: int) -> UserRead | None:
    """The user behind a console session, or None when it no longer exists."""
    with session_factory() as session:
        user = session.get(User, user_id)
        return None if user is None else UserRead.model_validate(user)


def list_users(*, session_factory: sessionmaker[Session]) -> list[UserRead]:
    with session_factory() as session:
        rows = session.scalars(select(User).order_by(User.username))
        return [UserRead.model_validate(row) for row in rows]
