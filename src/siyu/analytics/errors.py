"""Errors of the analytics domain: reports asked with bad dates or thresholds."""

from __future__ import annotations

from enum import StrEnum


class AnalyticsErrorCode(StrEnum):
    UNKNOWN_REPORT = "unknown_report"
    INVALID_DATE = "invalid_date"
    INVALID_THRESHOLD = "invalid_threshold"


class AnalyticsError(Exception):
    def __init__(self, code: AnalyticsErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
