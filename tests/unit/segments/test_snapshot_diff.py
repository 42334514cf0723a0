"""Snapshot diffs: entered ∪ stayed = the new set, exited ∩ new = ∅, and bitmaps round-trip."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from siyu.segments.service import mask_name
from siyu.segments.snapshots import BitMap64, decode, diff, encode

member_sets = st.sets(st.integers(min_value=1, max_value=2**40), max_size=60)


@given(previous=member_sets, current=member_sets)
def test_entered_and_stayed_make_the_new_snapshot(previous: set[int], current: set[int]) -> None:
    change = diff(BitMap64(previous), BitMap64(current))
    assert set(change.entered | change.stayed) == current
    assert not set(change.entered) & set(change.stayed)


@given(previous=member_sets, current=member_sets)
def test_no_one_who_exited_is_in_the_new_snapshot(previous: set[int], current: set[int]) -> None:
    change = diff(BitMap64(previous), BitMap64(current))
    assert not set(change.exited) & current
    assert set(change.exited | change.stayed) == previous


@given(members=member_sets)
def test_a_snapshot_bitmap_round_trips(members: set[int]) -> None:
    assert set(decode(encode(members))) == members


def test_an_empty_blob_is_an_empty_set() -> None:
    assert len(decode(None)) == 0
    assert len(decode(b"")) == 0


def test_the_sample_keeps_only_the_first_character_of_a_name() -> None:
    assert mask_name("王芳") == "王*"
    assert mask_name("Wang Fang") == "W********"
    assert mask_name(None) == ""
