"""Error codes of the privacy domain."""

from __future__ import annotations

from enum import StrEnum


class PrivacyErrorCode(StrEnum):
    NOT_ALLOWED = "not_allowed"


class PrivacyError(Exception):
    def __init__(self, code: PrivacyErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
