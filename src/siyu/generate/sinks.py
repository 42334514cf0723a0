"""Append chunks of text columns to files in the import formats (CSV, NDJSON, Parquet).

Every value is already its exact text, so CSV rows are joined by Arrow and written straight
from the Arrow buffer. Parquet columns are strings too (line_no is an integer): the
deliberately malformed dates and amounts must survive the trip to be rejected by the import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from siyu.generate import columns as col

FORMATS = ("csv", "ndjson", "parquet")
INTEGER_FIELDS = frozenset({"line_no"})


class Sink(Protocol):
    rows: int

    def write(self, rows: dict[str, pa.Array]) -> None: ...

    def close(self) -> None: ...


def write_lines(handle: BinaryIO, lines: pa.Array) -> None:
    """Write each string followed by a newline, straight from the Arrow data buffer."""
    if len(lines) == 0:
        return
    text = pc.binary_join_element_wise(lines, "\n", "")
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)
    first, last = int(offsets[text.offset]), int(offsets[text.offset + len(text)])
    handle.write(memoryview(text.buffers()[2])[first:last])


class CsvSink:
    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self.rows = 0
        self._handle = path.open("wb")
        self._handle.write((",".join(self.columns) + "\n").encode())

    def write(self, rows: dict[str, pa.Array]) -> None:
        values = [rows[name] for name in self.columns]
        lines = pc.binary_join_element_wise(
            *values, ",", null_handling="replace", null_replacement=""
        )
        write_lines(self._handle, lines)
        self.rows += len(lines)

    def close(self) -> None:
        self._handle.close()


class NdjsonSink:
    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self.rows = 0
        self._handle = path.open("wb")

    def write(self, rows: dict[str, pa.Array]) -> None:
        literals = {
            name: rows[name] if name in INTEGER_FIELDS else col.json_string(rows[name])
            for name in self.columns
        }
        lines = col.json_object(literals)
        write_lines(self._handle, lines)
        self.rows += len(lines)

    def write_objects(self, lines: pa.Array) -> None:
        write_lines(self._handle, lines)
        self.rows += len(lines)

    def close(self) -> None:
        self._handle.close()


class ParquetSink:
    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self.rows = 0
        self._schema = pa.schema(
            [(name, pa.int64() if name in INTEGER_FIELDS else pa.string()) for name in self.columns]
        )
        self._writer = pq.ParquetWriter(path, self._schema, compression="zstd")

    def write(self, rows: dict[str, pa.Array]) -> None:
        arrays = [
            pc.cast(rows[name], field.type)
            for name, field in zip(self.columns, self._schema, strict=True)
        ]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))
        self.rows += len(arrays[0])

    def close(self) -> None:
        self._writer.close()


def open_sink(fmt: str, directory: Path, stem: str, columns: Sequence[str]) -> Sink:
    path = directory / f"{stem}.{fmt}"
    if fmt == "csv":
        return CsvSink(path, columns)
    if fmt == "ndjson":
        return NdjsonSink(path, columns)
    return ParquetSink(path, columns)
