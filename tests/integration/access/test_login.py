"""Console users: argon2 hashes, login, failure counter, lockout after five failures, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from siyu.access import service as access_service
from siyu.access.errors import AccessError, AccessErrorCode
from siyu.access.models import User
from siyu.access.schemas import Role
from siyu.audit.models import AuditEntry
from siyu.bootstrap import Siyu
from siyu.clock import FixedClock
from tests.factories.brand import PASSWORD, hq_user


def _login(siyu: Siyu, password: str, username: str = "zhang.hq") -> None:
    access_service.authenticate(
        session_factory=siyu.session_factory, clock=siyu.clock, username=username, password=password
    )


def _user(siyu: Siyu) -> User:
    with siyu.session_factory() as session:
        user = session.scalar(select(User).where(User.username == "zhang.hq"))
        assert user is not None
        return user


def test_password_is_stored_as_an_argon2_hash(siyu: Siyu) -> None:
    hq_user(siyu.session_factory, siyu.clock)
    stored = _user(siyu).password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_right_password_signs_in_and_records_the_login(siyu: Siyu, clock: FixedClock) -> None:
    hq_user(siyu.session_factory, siyu.clock)
    user = access_service.authenticate(
        session_factory=siyu.session_factory, clock=clock, username="zhang.hq", password=PASSWORD
    )
    assert (user.username, user.role, user.last_login_at) == ("zhang.hq", Role.HQ, clock.now())


def test_wrong_password_is_refused_and_counted(siyu: Siyu) -> None:
    hq_user(siyu.session_factory, siyu.clock)
    with pytest.raises(AccessError) as refused:
        _login(siyu, "not-the-password")
    assert refused.value.code == AccessErrorCode.INVALID_CREDENTIALS
    assert _user(siyu).failed_logins == 1


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(siyu: Siyu) -> None:
    with pytest.raises(AccessError) as refused:
        _login(siyu, PASSWORD, username="nobody")
    assert refused.value.code == AccessErrorCode.INVALID_CREDENTIALS
    assert refused.value.message == "wrong username or password"


def test_fifth_failure_locks_the_account_even_for_the_right_password(siyu: Siyu) -> None:
    hq_user(siyu.session_factory, siyu.clock)
    for _ in range(5):
        with pytest.raises(AccessError):
            _login(siyu, "guess")
    with pytest.raises(AccessError) as refused:
        _login(siyu, PASSWORD)
    assert refused.value.code == AccessErrorCode.ACCOUNT_LOCKED
    assert _user(siyu).last_login_at is None


def test_lock_ends_after_fifteen_minutes(siyu: Siyu, clock: FixedClock) -> None:
    hq_user(siyu.session_factory, siyu.clock)
    for _ in range(5):
        with pytest.raises(AccessError):
            _login(siyu, "guess")
    clock.advance(timedelta(minutes=14, seconds=59))
    with pytest.raises(AccessError):
        _login(siyu, PASSWORD)
    clock.advance(timedelta(seconds=1))
    _login(siyu, PASSWORD)
    assert (_user(siyu).failed_logins, _user(siyu).locked_until) == (0, None)


def test_success_resets_the_failure_count(siyu: Siyu) -> None:
    hq_user(siyu.session_factory, siyu.clock)
    for _ in range(4):
        with pytest.raises(AccessError):
            _login(siyu, "guess")
    _login(siyu, PASSWORD)
    with pytest.raises(AccessError):
        _login(siyu, "guess")
    assert _user(siyu).failed_logins == 1


def test_every_attempt_is_audited(siyu: Siyu) -> None:
    hq_user(siyu.session_factory, siyu.clock)
    with pytest.raises(AccessError):
        _login(siyu, "guess")
    _login(siyu, PASSWORD)
    with siyu.session_factory() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.actor, AuditEntry.detail)
            .where(AuditEntry.action.like("user.login%"))
            .order_by(AuditEntry.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("user.login_failed", "zhang.hq", {"outcome": "invalid_credentials"}),
        ("user.login", "zhang.hq", {"outcome": "success"}),
    ]


def test_username_is_unique(siyu: Siyu) -> None:
    hq_user(siyu.session_factory, siyu.clock)
    with pytest.raises(AccessError) as refused:
        hq_user(siyu.session_factory, siyu.clock)
    assert refused.value.code == AccessErrorCode.USERNAME_TAKEN


def test_short_password_is_refused(siyu: Siyu) -> None:
    with pytest.raises(AccessError) as refused:
        access_service.create_user(
            session_factory=siyu.session_factory,
            clock=siyu.clock,
            username="xiaoli",
            password="1234567",
            role=Role.GUIDE,
        )
    assert refused.value.message == "password: at least 8 characters"
    assert access_service.list_users(session_factory=siyu.session_factory) == []
