"""Error codes of the staff domain; adapters map them to HTTP status, CLI exit codes, messages."""

from __future__ import annotations

from enum import StrEnum


class StaffErrorCode(StrEnum):
    UNKNOWN_STAFF = "unknown_staff"
    UNKNOWN_STORE = "unknown_store"
    UNKNOWN_MEMBER = "unknown_member"
    UNKNOWN_TASK = "unknown_task"
    INVALID_TASK = "invalid_task"
    TASK_CLOSED = "task_closed"
    NOT_ALLOWED = "not_allowed"
    INVALID_RULES = "invalid_rules"
    NO_SUCCESSOR = "no_successor"
    INVALID_CONTEST = "invalid_contest"


class StaffError(Exception):
    def __init__(self, code: StaffErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
