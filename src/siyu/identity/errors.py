"""Errors of the identity domain, one code each so adapters can map them in one place."""

from __future__ import annotations

from enum import StrEnum


class IdentityErrorCode(StrEnum):
    MEMBER_NOT_FOUND = "member_not_found"
    IDENTITY_NOT_UNDERSTOOD = "identity_not_understood"


class IdentityError(Exception):
    def __init__(self, code: IdentityErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class MemberNotFoundError(IdentityError):
    def __init__(self, identity: str) -> None:
        super().__init__(IdentityErrorCode.MEMBER_NOT_FOUND, f"no member has identity {identity!r}")


class IdentityNotUnderstoodError(IdentityError):
    def __init__(self, identity: str, why: str) -> None:
        super().__init__(
            IdentityErrorCode.IDENTITY_NOT_UNDERSTOOD, f"cannot read identity {identity!r}: {why}"
        )
