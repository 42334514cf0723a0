"""Error codes of the tags domain; adapters map them to HTTP status and CLI exit codes."""

from __future__ import annotations

from enum import StrEnum


class TagErrorCode(StrEnum):
    INVALID_TAG = "invalid_tag"
    GROUP_NOT_FOUND = "tag_group_not_found"
    TAG_NOT_FOUND = "tag_not_found"
    MEMBER_NOT_FOUND = "member_not_found"
    ALREADY_EXISTS = "tag_already_exists"
    INVALID_RULE = "invalid_rule"
    RULE_TAG_IS_COMPUTED = "rule_tag_is_computed"


class TagError(Exception):
    def __init__(self, code: TagErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
