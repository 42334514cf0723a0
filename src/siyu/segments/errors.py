"""Error codes and exceptions of the segments domain; adapters map them to HTTP/CLI/console."""

from __future__ import annotations

from enum import StrEnum


class SegmentErrorCode(StrEnum):
    INVALID_DEFINITION = "invalid_definition"
    NOT_FOUND = "segment_not_found"
    NAME_TAKEN = "segment_name_taken"
    CYCLE = "segment_reference_cycle"
    NO_SNAPSHOT = "segment_no_snapshot"
    UNSUPPORTED = "segment_unsupported"
    IN_USE = "segment_in_use"


class SegmentError(Exception):
    code: SegmentErrorCode = SegmentErrorCode.INVALID_DEFINITION

    def __init__(self, message: str, *, code: SegmentErrorCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class SegmentDefinitionError(SegmentError):
    """The JSON definition is invalid; `problems` are `$.path: what is wrong` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems), code=SegmentErrorCode.INVALID_DEFINITION)
        self.problems = problems


class SegmentNotFoundError(SegmentError):
    code = SegmentErrorCode.NOT_FOUND


class SegmentNameTakenError(SegmentError):
    code = SegmentErrorCode.NAME_TAKEN


class SegmentCycleError(SegmentError):
    code = SegmentErrorCode.CYCLE


class SegmentInUseError(SegmentError):
    code = SegmentErrorCode.IN_USE
