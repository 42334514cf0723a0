"""What an operator may type into `siyu members show`."""

from __future__ import annotations

import pytest

from siyu.identity.errors import IdentityNotUnderstoodError
from siyu.identity.oneid import UnionFind
from siyu.identity.service import candidate_keys


def test_a_phone_in_any_format_is_tried_as_a_phone_first() -> None:
    assert candidate_keys("+86 138-0013-8000")[0] == ("phone", "13800138000")


def test_explicit_type_prefix_is_taken_literally() -> None:
    assert candidate_keys("unionid:oU123") == [("unionid", "oU123")]
    assert candidate_keys("openid:wx01:o-abc") == [("openid:wx01", "o-abc")]


def test_a_bare_value_is_tried_as_every_non_phone_type() -> None:
    assert candidate_keys("M001") == [
        ("member_no", "M001"),
        ("unionid", "M001"),
        ("external_userid", "M001"),
        ("openid", "M001"),
        ("pos_id", "M001"),
    ]


def test_an_invalid_explicit_phone_is_refused() -> None:
    with pytest.raises(IdentityNotUnderstoodError):
        candidate_keys("phone:123")


def test_union_find_result_does_not_depend_on_union_order() -> None:
    first, second = UnionFind(), UnionFind()
    for a, b in [(1, 2), (3, 4), (2, 3)]:
        first.union(a, b)
    for a, b in [(2, 3), (3, 4), (1, 2)]:
        second.union(a, b)
    assert {first.find(n) for n in range(1, 5)} == {second.find(n) for n in range(1, 5)} == {1}
