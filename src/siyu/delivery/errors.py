"""Error codes of the delivery domain."""

from __future__ import annotations

from enum import StrEnum


class DeliveryErrorCode(StrEnum):
    UNKNOWN_CHANNEL = "unknown_channel"
    INVALID_POLICY = "invalid_policy"
    NOT_FOUND = "not_found"
    MEMBER_NOT_FOUND = "member_not_found"


class DeliveryError(Exception):
    def __init__(self, code: DeliveryErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
