"""A map step's items are read exactly as ``json.loads`` reads them, whichever parser reads
them (``gristmill.engine.mapping.item_parser``)."""

from __future__ import annotations

import json
import math

import pytest

from gristmill.engine.mapping import fast_loads, item_parser

TEXTS = [
    '{"id": 7, "value": "item 7", "ok": true, "none": null}',
    '[1, 2.5, -0.0, 1e300, "\\u00e9\\ud83d\\ude00"]',
    '{"a": 1, "a": 2}',  # the last of a repeated key
    '"text"',
    "9223372036854775807",
    "12345678901234567890123",  # past 64 bits: orjson alone reads it as a float
    "-9999999999999999999",
    '{"id": 18446744073709551616}',
    "3.141592653589793238462643383279",
    "1e400",
    '"\\ud800"',  # a lone surrogate
    '  {"padded": true}  ',
]


def read(text: str) -> object:
    return item_parser(text.encode())(text)


@pytest.mark.parametrize("text", TEXTS)
def test_an_item_reads_as_json_reads_it(text: str) -> None:
    parsed = read(text)
    assert parsed == json.loads(text)
    assert type(parsed) is type(json.loads(text))


def test_a_batch_without_long_numbers_is_read_by_the_fast_parser() -> None:
    assert item_parser(b'{"id": 123456789012345678}\n{"id": 2}\n') is fast_loads
    assert item_parser(b'{"id": 1}\n{"id": 1234567890123456789}\n') is json.loads


def test_nan_and_infinity_are_read_as_json_reads_them() -> None:
    parsed = read('{"x": NaN, "y": Infinity, "z": -Infinity}')
    assert isinstance(parsed, dict)
    assert math.isnan(parsed["x"]) and parsed["y"] == math.inf and parsed["z"] == -math.inf


@pytest.mark.parametrize("text", ['{"id": 1,', "not json", '{"a": 1} trailing', ""])
def test_text_that_is_not_json_fails_as_json_words_it(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as raised:
        read(text)
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    assert str(raised.value) == str(expected.value)
