"""The flattening convention turns nested JSON into columns and back without loss."""

from __future__ import annotations

from typing import Any

import pytest

from gristmill.library.flattening import FlatteningError, flatten, to_cell, unflatten

AWKWARD: list[Any] = [
    {"id": "12", "n": 1.0, "m": 2, "big": 2**60, "f": 0.5, "t": True, "z": None},
    {"s": "", "q": "'quoted", "e": [], "o": {}, "j": "[1]", "nul": "null"},
    {"a/b": 1, "~x": 2, "0": "digit key", "list": [[1, 2], {"k": "v"}], "deep": {"x": [{}]}},
    {"formula": "=1+1", "unicode": "café ✓"},
]


@pytest.mark.parametrize("native", [True, False], ids=["xlsx", "csv"])
@pytest.mark.parametrize("item", AWKWARD)
def test_an_item_survives_flattening_and_back(item: Any, native: bool) -> None:
    row = {column: to_cell(value, native=native) for column, value in flatten(item)}
    assert unflatten(row) == item


def test_columns_are_paths_of_keys_and_indexes() -> None:
    item = {"parties": [{"name": "A", "ids": ["x"]}], "a/b": 1, "7": 2}
    assert [column for column, _ in flatten(item)] == [
        "parties/0/name",
        "parties/0/ids/0",
        "a~1b",
        "~n7",
    ]


def test_empty_cells_are_absent_keys() -> None:
    assert unflatten({"a": "x", "b": "", "c": None, "d/0": "1"}) == {"a": "x", "d": [1]}


def test_a_column_inside_a_valued_column_is_refused() -> None:
    with pytest.raises(FlatteningError) as error:
        unflatten({"a": "x", "a/b": "y"})
    assert str(error.value) == "column 'a/b' lies inside a column that has a value"
