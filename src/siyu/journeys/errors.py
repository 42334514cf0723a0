"""Error codes of the journeys domain; adapters map them to HTTP status and CLI exit codes."""

from __future__ import annotations

from enum import StrEnum


class JourneyErrorCode(StrEnum):
    INVALID_DEFINITION = "invalid_definition"
    UNKNOWN_ACTION = "unknown_action"
    NOT_FOUND = "journey_not_found"
    INVALID_STATE = "invalid_state"
    ACTION_FAILED = "action_failed"
    TEMPLATE_ERROR = "template_error"


class JourneyError(Exception):
    def __init__(self, code: JourneyErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class JourneyNotFound(JourneyError):
    def __init__(self, name: str) -> None:
        super().__init__(JourneyErrorCode.NOT_FOUND, f"no journey named {name!r}")
