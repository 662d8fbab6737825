"""Facts about decoded JSON values: the deep copy updates work on."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from datastore.jsonvalues import json_copy

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=30,
)


def _containers(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value, *[c for item in value.values() for c in _containers(item)]]
    if isinstance(value, list):
        return [value, *[c for item in value for c in _containers(item)]]
    return []


@given(json_values)
def test_a_copy_is_equal_and_shares_no_object_or_array(value: Any) -> None:
    copied = json_copy(value)
    assert copied == value
    originals = {id(c) for c in _containers(value)}
    assert not originals & {id(c) for c in _containers(copied)}
