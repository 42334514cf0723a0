"""Growth error codes."""

from __future__ import annotations

from enum import StrEnum


class GrowthErrorCode(StrEnum):
    STATE_TOO_LONG = "growth.state_too_long"
    STATE_TAKEN = "growth.state_taken"
    NO_GUIDES = "growth.no_guides"
    UNKNOWN_CODE = "growth.unknown_code"
    BAD_WELCOME = "growth.bad_welcome"


class GrowthError(Exception):
    def __init__(self, code: GrowthErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
