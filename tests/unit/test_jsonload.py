"""Reading JSON a user sent: every failure a message naming the line and column, including
the valid JSON that Python's parser cannot take (deep nesting, very long integers)."""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path
from typing import Any

import pytest

from gristmill import InputFile, RunContext, TaskError
from gristmill.authoring.jsonload import JsonError, load, loads
from gristmill.demo import pipelines as demo

LIMIT = sys.get_int_max_str_digits()


def refusal(data: str | bytes, name: str = "data.json") -> str:
    with pytest.raises(JsonError) as caught:
        loads(data, name=name)
    return caught.value.message


def test_json_is_read() -> None:
    assert loads(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}


def test_a_syntax_error_names_the_line_and_column() -> None:
    assert refusal('{"a": 1,\n  }') == (
        "data.json is not valid JSON: Expecting property name enclosed in double quotes: "
        "line 2 column 3 (char 11)"
    )


def test_deep_nesting_names_the_deepest_point() -> None:
    assert refusal("[" * 100_000 + "]" * 100_000) == (
        "data.json is nested too deeply to read: 100,000 levels at line 1 column 100000"
    )


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '{"a": "[[[[{{{{",\n "b": ' + "[" * 5000 + "]" * 5000 + "}"
    assert refusal(text) == (
        "data.json is nested too deeply to read: 5,001 levels at line 2 column 5006"
    )


def test_a_very_long_integer_names_its_place_and_the_limit() -> None:
    digits = LIMIT + 700
    assert refusal('{"n": [1,\n  -' + "7" * digits + "]}") == (
        f"data.json holds an integer too long to read: {digits:,} digits at line 2 column 3 "
        f"(at most {LIMIT:,})"
    )


def test_a_very_long_fraction_is_read() -> None:
    assert loads("0." + "1" * (LIMIT + 1)) == pytest.approx(1 / 9)


def test_nan_is_not_json() -> None:
    assert (
        refusal("[1,\n NaN]") == "data.json is not valid JSON: NaN is not allowed (line 2 column 2)"
    )


def test_bytes_that_are_not_utf8_are_named() -> None:
    assert refusal(b'["\xff"]') == (
        "data.json is not valid JSON: it is not UTF-8 text (byte 2 is not valid)"
    )


def test_the_error_is_a_task_error_with_the_detail_apart() -> None:
    with pytest.raises(TaskError) as caught:
        loads("[", name="the body")
    assert isinstance(caught.value, JsonError)
    assert caught.value.detail == ("is not valid JSON: Expecting value: line 1 column 2 (char 1)")


def test_load_reads_a_file_named_by_its_path(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 3000 + "]" * 3000)
    with pytest.raises(JsonError) as caught:
        load(path)
    assert caught.value.message == (
        "deep.json is nested too deeply to read: 3,000 levels at line 1 column 3000"
    )


def test_load_reads_a_stream() -> None:
    assert load(io.BytesIO(b"[1]"), name="x") == [1]


# the JSON demo


def demo_run(tmp_path: Path, content: bytes) -> RunContext:
    path = tmp_path / "upload.json"
    path.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    item = InputFile("upload.json", path, len(content), digest, "application/json")
    return RunContext(
        run_id="r1",
        pipeline="json-check",
        step="parse_json",
        inputs=(item,),
        params=None,
        workdir=tmp_path / "work",
        upstream={},
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"[" * 100_000 + b"]" * 100_000,
            "upload.json is nested too deeply to read: 100,000 levels at line 1 column 100000",
        ),
        (
            b"[" + b"9" * 5000 + b"]",
            f"upload.json holds an integer too long to read: 5,000 digits at line 1 column 2 "
            f"(at most {LIMIT:,})",
        ),
    ],
)
def test_the_json_demo_answers_extreme_json_with_a_message(
    tmp_path: Path, content: bytes, message: str
) -> None:
    task: Any = demo.json_check.step("parse_json")
    with pytest.raises(TaskError) as caught:
        task.process(demo_run(tmp_path, content), {})
    assert caught.value.message == message
