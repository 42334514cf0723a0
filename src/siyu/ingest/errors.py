"""Errors of the ingest domain. Bad *rows* are not errors: they are rejected with a reason."""

from __future__ import annotations

from enum import StrEnum


class IngestErrorCode(StrEnum):
    UNKNOWN_KIND = "unknown_kind"
    UNKNOWN_FORMAT = "unknown_format"
    FILE_NOT_FOUND = "file_not_found"
    MISSING_COLUMNS = "missing_columns"


class IngestError(Exception):
    def __init__(self, code: IngestErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
