"""Why a generate request is refused."""

from __future__ import annotations

from enum import StrEnum


class GenerateErrorCode(StrEnum):
    INVALID_MEMBERS = "invalid_members"
    INVALID_PERIOD = "invalid_period"
    INVALID_FORMAT = "invalid_format"
    INVALID_STORES = "invalid_stores"


class GenerateError(ValueError):
    def __init__(self, code: GenerateErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
