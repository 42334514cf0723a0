"""Streaming readers for CSV, NDJSON and Parquet: batches of (line, row) in constant memory.

A row that cannot even be parsed (broken JSON) is yielded with `row=None` and the parse error,
so it is rejected like any other bad row instead of aborting the import.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siyu.ingest.errors import IngestError, IngestErrorCode

FORMATS = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson", ".parquet": "parquet"}


@dataclass(frozen=True)
class SourceRow:
    line: int
    row: dict[str, Any] | None
    error: str | None = None


def detect_format(path: Path) -> str:
    if not path.exists():
        raise IngestError(IngestErrorCode.FILE_NOT_FOUND, f"{path}: no such file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise IngestError(
            IngestErrorCode.UNKNOWN_FORMAT,
            f"{path}: unknown format {path.suffix!r} (use .csv, .ndjson/.jsonl or .parquet)",
        )
    return fmt


def count_rows(path: Path) -> int:
    """How many rows the file holds, cheaply, for the progress bar."""
    fmt = detect_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = scan_text(path).lines
    return max(lines - 1, 0) if fmt == "csv" else lines


@dataclass(frozen=True)
class TextScan:
    lines: int  # physical lines; a last line without a newline counts
    has_quotes: bool


def scan_text(path: Path) -> TextScan:
    """One pass over a text file's bytes: its physical lines and whether any `"` occurs."""
    lines, last, quotes = 0, b"\n", False
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            quotes = quotes or b'"' in chunk
            last = chunk[-1:]
    return TextScan(lines + (last != b"\n"), quotes)


def read_batches(path: Path, *, batch_size: int) -> Iterator[list[SourceRow]]:
    fmt = detect_format(path)
    rows = {"csv": _csv_rows, "ndjson": _ndjson_rows, "parquet": _parquet_rows}[fmt](path)
    batch: list[SourceRow] = []
    for item in rows:
        batch.append(item)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def columns_of(path: Path) -> list[str]:
    """The source's column names, in order (for the rejected-rows file)."""
    fmt = detect_format(path)
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    return []


def _csv_rows(path: Path) -> Iterator[SourceRow]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        names = [name.strip() for name in header]
        start = reader.line_num + 1
        for values in reader:
            if values:
                yield csv_row(start, names, values)
            start = reader.line_num + 1


def csv_row(line: int, names: list[str], values: list[str]) -> SourceRow:
    """One CSV record as a row: missing trailing cells are absent, extra ones an error."""
    error = "too many columns" if len(values) > len(names) else None
    return SourceRow(line, dict(zip(names, values, strict=False)), error)


def _ndjson_rows(path: Path) -> Iterator[SourceRow]:
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                yield SourceRow(number, None, f"malformed JSON: {error.msg}")
                continue
            if isinstance(value, dict):
                yield SourceRow(number, value)
            else:
                yield SourceRow(number, None, "malformed JSON: not an object")


def _parquet_rows(path: Path) -> Iterator[SourceRow]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            number += 1
            yield SourceRow(number, {k: _plain(v) for k, v in row.items()})


def _plain(value: Any) -> Any:
    """Parquet cells become the text a CSV would have held, except nested objects."""
    if value is None or isinstance(value, (str, dict, list)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
