"""Member-id sets as compressed roaring bitmaps (ADR 0002), and the diff between two snapshots."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pyroaring import BitMap64

__all__ = ["BitMap64", "Diff", "decode", "diff", "encode"]


def encode(member_ids: Iterable[int]) -> bytes:
    """Portable roaring serialisation of a set of member ids (64-bit: ids are BIGINT)."""
    bitmap = BitMap64(member_ids)
    bitmap.run_optimize()
    return bytes(bitmap.serialize())


def decode(blob: bytes | None) -> BitMap64:
    return BitMap64.deserialize(blob) if blob else BitMap64()


@dataclass(frozen=True)
class Diff:
    """Who entered and who left between the previous member set and the new one."""

    entered: BitMap64
    exited: BitMap64
    stayed: BitMap64


def diff(previous: BitMap64, current: BitMap64) -> Diff:
    return Diff(entered=current - previous, exited=previous - current, stayed=current & previous)
