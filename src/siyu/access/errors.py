"""Error codes of the access domain; adapters map them to HTTP status, CLI exit codes, messages."""

from __future__ import annotations

from enum import StrEnum


class AccessErrorCode(StrEnum):
    INVALID_CREDENTIALS = "invalid_credentials"
    ACCOUNT_LOCKED = "account_locked"
    ACCOUNT_INACTIVE = "account_inactive"
    USERNAME_TAKEN = "username_taken"
    INVALID_USER = "invalid_user"
    INVALID_API_KEY = "invalid_api_key"
    API_KEY_REVOKED = "api_key_revoked"
    UNKNOWN_API_KEY = "unknown_api_key"
    INVALID_API_KEY_SPEC = "invalid_api_key_spec"
    MISSING_SCOPE = "missing_scope"
    NOT_ALLOWED = "not_allowed"


class AccessError(Exception):
    def __init__(self, code: AccessErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
