"""Checks on a submission: parameters, input count and kind, and the pipeline's validators."""

from __future__ import annotations

import enum
import hashlib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from gristmill import InputFile, Inputs, Pipeline, SubmissionError, TaskError, task
from gristmill.authoring.commands import Command
from gristmill.authoring.validation import (
    check_input_count,
    check_input_kind,
    params_from_text,
    run_validators,
    size_limit_message,
    validate_params,
)


class Level(enum.Enum):
    LOW = 2
    HIGH = "high"


class Params(BaseModel):
    sample: int = Field(100, ge=1)
    mode: str = "fast"


@task
def parse(run: Any) -> None:
    pass


def pipeline(**options: Any) -> Pipeline:
    return Pipeline("p", [parse], **options)


def refusal(check: Any, *args: Any, **options: Any) -> dict[str, list[str]]:
    """The messages, by field, of the SubmissionError that ``check(*args, **options)`` raises."""
    with pytest.raises(SubmissionError) as caught:
        check(*args, **options)
    return caught.value.errors


def input_file(directory: Path, name: str, content: bytes) -> InputFile:
    path = directory / name
    path.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    return InputFile(name, path, len(content), digest, "application/json")


# validate_params


def test_an_unknown_parameter_is_refused() -> None:
    assert refusal(validate_params, pipeline(params=Params), {"size": 3}) == {
        "params.size": ["unknown parameter 'size' (this pipeline takes: mode, sample)"]
    }


def test_any_parameter_is_unknown_to_a_pipeline_without_parameters() -> None:
    assert refusal(validate_params, pipeline(), {"size": 3}) == {
        "params.size": ["unknown parameter 'size' (this pipeline takes: none)"]
    }


def test_a_value_of_the_wrong_type_is_refused_under_its_parameter_name() -> None:
    assert refusal(validate_params, pipeline(params=Params), {"sample": "many"}) == {
        "params.sample": ["Input should be a valid integer, unable to parse string as an integer"]
    }


def test_a_value_out_of_range_is_refused_under_its_parameter_name() -> None:
    assert refusal(validate_params, pipeline(params=Params), {"sample": 0}) == {
        "params.sample": ["Input should be greater than or equal to 1"]
    }


def test_an_unknown_name_and_a_wrong_value_are_reported_together() -> None:
    raw = {"size": 3, "sample": 0, "mode": "x\x00"}
    assert refusal(validate_params, pipeline(params=Params), raw) == {
        "params.size": ["unknown parameter 'size' (this pipeline takes: mode, sample)"],
        "params.sample": ["Input should be greater than or equal to 1"],
        "params.mode": ["must not contain NUL characters"],
    }


class Required(BaseModel):
    path: str
    count: int


def test_a_refused_required_value_is_not_also_reported_missing() -> None:
    raw = {"path": "a\x00", "count": "many", "extra": 1}
    assert refusal(validate_params, pipeline(params=Required), raw, strict=True) == {
        "params.path": ["must not contain NUL characters"],
        "params.extra": ["unknown parameter 'extra' (this pipeline takes: count, path)"],
        "params.count": ["Input should be a valid integer"],
    }


def test_a_refused_submission_is_a_client_error() -> None:
    with pytest.raises(SubmissionError) as caught:
        validate_params(pipeline(params=Params), {"size": 3})
    assert type(caught.value) is SubmissionError  # not too large, not an unknown pipeline
    assert str(caught.value) == (
        "params.size: unknown parameter 'size' (this pipeline takes: mode, sample)"
    )


def test_defaults_are_applied_to_missing_parameters() -> None:
    params = validate_params(pipeline(params=Params), {"mode": "slow"})
    assert params == Params(sample=100, mode="slow")


def test_no_parameters_at_all_gives_the_defaults() -> None:
    assert validate_params(pipeline(params=Params), None) == Params()


def test_a_numeric_string_is_coerced_to_an_integer() -> None:
    params = validate_params(pipeline(params=Params), {"sample": "100"})
    assert isinstance(params, Params)
    assert params.sample == 100


# check_input_count


def test_too_few_inputs_are_refused() -> None:
    assert refusal(check_input_count, pipeline(), 0) == {
        "inputs": ["this pipeline needs an input; 0 given"]
    }


def test_too_few_inputs_are_refused_with_the_minimum() -> None:
    spec = Inputs(min_count=2, max_count=5)
    assert refusal(check_input_count, pipeline(inputs=spec), 1) == {
        "inputs": ["this pipeline needs at least 2 inputs; 1 given"]
    }


def test_too_many_inputs_are_refused() -> None:
    assert refusal(check_input_count, pipeline(), 2) == {
        "inputs": ["this pipeline takes one input; 2 given"]
    }


def test_too_many_inputs_are_refused_with_the_maximum() -> None:
    spec = Inputs(min_count=1, max_count=3)
    assert refusal(check_input_count, pipeline(inputs=spec), 4) == {
        "inputs": ["this pipeline takes at most 3 inputs; 4 given"]
    }


def test_an_accepted_number_of_inputs_passes() -> None:
    check_input_count(pipeline(inputs=Inputs(min_count=1, max_count=3)), 3)


# check_input_kind


def test_a_refused_kind_of_input_is_named() -> None:
    assert refusal(check_input_kind, pipeline(), "url", "data.json") == {
        "inputs": ["data.json: this pipeline does not take url inputs (it takes: file, json, text)"]
    }


def test_a_refused_file_extension_is_named_with_the_accepted_ones() -> None:
    spec = Inputs(extensions=["json", "csv"])
    assert refusal(check_input_kind, pipeline(inputs=spec), "file", "data.txt") == {
        "inputs": ["data.txt: files of this type are not accepted (accepted: .json, .csv)"]
    }


def test_a_file_without_an_extension_is_refused_when_extensions_are_listed() -> None:
    spec = Inputs(extensions=["json"])
    assert refusal(check_input_kind, pipeline(inputs=spec), "file", "README") == {
        "inputs": ["README: files of this type are not accepted (accepted: .json)"]
    }


def test_an_accepted_extension_passes_whatever_its_case() -> None:
    check_input_kind(pipeline(inputs=Inputs(extensions=["json"])), "file", "DATA.JSON")


def test_any_extension_passes_when_none_are_listed() -> None:
    check_input_kind(pipeline(), "file", "data.bin")


# size_limit_message


@pytest.mark.parametrize(
    ("max_size", "words"),
    [(500, "500 bytes"), (1536, "1.5 KiB"), (50 * 1024 * 1024, "50 MiB"), (2 << 30, "2 GiB")],
)
def test_the_size_limit_is_given_in_readable_units(max_size: int, words: str) -> None:
    message = size_limit_message(pipeline(inputs=Inputs(max_size=max_size)), "big.csv")
    assert message == f"big.csv: the file is larger than this pipeline's limit of {words}"


# run_validators


def is_small(item: InputFile) -> bool:
    return item.size < 10


def mentions_data(item: InputFile) -> str | None:
    return None if b"data" in item.path.read_bytes() else "the file must mention data"


def parses(item: InputFile) -> bool:
    if not item.path.read_bytes().startswith(b"{"):
        raise TaskError("not valid JSON: expected '{' at byte 0")
    return True


def test_a_validator_returning_false_refuses_with_the_check_named(tmp_path: Path) -> None:
    big = input_file(tmp_path, "big.json", b'{"data": [1, 2, 3]}')
    assert refusal(run_validators, pipeline(validators=[is_small]), [big]) == {
        "inputs": ["big.json: failed the check 'is small'"]
    }


def test_a_validator_returning_text_refuses_with_that_text(tmp_path: Path) -> None:
    empty = input_file(tmp_path, "empty.json", b"{}")
    assert refusal(run_validators, pipeline(validators=[mentions_data]), [empty]) == {
        "inputs": ["empty.json: the file must mention data"]
    }


def test_a_validator_raising_task_error_refuses_with_its_message(tmp_path: Path) -> None:
    broken = input_file(tmp_path, "broken.json", b"[data")
    assert refusal(run_validators, pipeline(validators=[parses]), [broken]) == {
        "inputs": ["broken.json: not valid JSON: expected '{' at byte 0"]
    }


def test_validators_returning_true_or_none_accept(tmp_path: Path) -> None:
    good = input_file(tmp_path, "good.json", b'{"data"}')
    run_validators(pipeline(validators=[is_small, mentions_data, parses]), [good])


def test_every_refusal_of_every_input_is_reported(tmp_path: Path) -> None:
    big = input_file(tmp_path, "big.json", b'{"data": [1, 2, 3]}')
    broken = input_file(tmp_path, "broken.json", b"[1]")
    checks = pipeline(validators=[is_small, mentions_data, parses], inputs=Inputs(max_count=2))
    assert refusal(run_validators, checks, [big, broken]) == {
        "inputs": [
            "big.json: failed the check 'is small'",
            "broken.json: the file must mention data",
            "broken.json: not valid JSON: expected '{' at byte 0",
        ]
    }


def test_a_validator_that_crashes_refuses_with_a_reference(tmp_path: Path) -> None:
    def broken_check(item: InputFile) -> bool:
        raise KeyError("oops")

    item = input_file(tmp_path, "data.json", b"{}")
    (message,) = refusal(run_validators, pipeline(validators=[broken_check]), [item])["inputs"]
    assert message.startswith("data.json: the check 'broken check' failed with an internal error")


def test_a_parameter_with_a_nul_character_is_refused() -> None:
    assert refusal(validate_params, pipeline(params=Params), {"mode": "a\x00b"}) == {
        "params.mode": ["must not contain NUL characters"]
    }


# parameters of command steps


class ToolParams(BaseModel):
    pattern: str = "x"
    tags: list[str] = []
    limit: int | None = None


def tool_pipeline(*argv: str) -> Pipeline:
    return Pipeline("p", [Command("grep", ["grep", *argv])], params=ToolParams)


def test_a_command_parameter_starting_with_a_dash_is_refused_at_submission() -> None:
    assert refusal(validate_params, tool_pipeline("{params.pattern}"), {"pattern": "-rf"}) == {
        "params.pattern": ["must not start with '-': command `grep` would read it as an option"]
    }


def test_a_negative_number_for_a_command_is_refused_at_submission() -> None:
    assert refusal(validate_params, tool_pipeline("{params.limit}"), {"limit": -1}) == {
        "params.limit": ["must not start with '-': command `grep` would read it as an option"]
    }


def test_a_list_for_a_command_is_refused_at_submission() -> None:
    assert refusal(validate_params, tool_pipeline("{params.tags}"), {"tags": ["a"]}) == {
        "params.tags": ["must be one value, not a list: command `grep` takes it as one argument"]
    }


def test_a_missing_value_for_a_command_is_refused_at_submission() -> None:
    assert refusal(validate_params, tool_pipeline("{params.limit}"), {}) == {
        "params.limit": ["needs a value: command `grep` takes it as an argument"]
    }


def test_a_dash_is_refused_only_in_parameters_a_command_reads() -> None:
    params = validate_params(tool_pipeline("{params.pattern}"), {"tags": ["-a"], "limit": -1})
    assert params == ToolParams(tags=["-a"], limit=-1)


# strict validation (values that arrived as JSON) and the longest text


class Typed(BaseModel):
    sample: int = 100
    ratio: float = 0.5
    fast: bool = False
    mode: str = "a"
    note: str = Field("", max_length=20_000)
    tags: list[str] = []


def test_strict_validation_refuses_a_number_in_text() -> None:
    assert refusal(
        lambda: validate_params(pipeline(params=Typed), {"sample": "100"}, strict=True)
    ) == {"params.sample": ["Input should be a valid integer"]}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("sample", True, "Input should be a valid integer"),
        ("fast", 1, "Input should be a valid boolean"),
        ("fast", "false", "Input should be a valid boolean"),
        ("mode", 5, "Input should be a valid string"),
        ("sample", 1.5, "Input should be a valid integer"),
    ],
)
def test_strict_validation_converts_nothing(name: str, value: Any, message: str) -> None:
    assert refusal(lambda: validate_params(pipeline(params=Typed), {name: value}, strict=True)) == {
        f"params.{name}": [message]
    }


def test_strict_validation_takes_values_of_their_json_types() -> None:
    raw = {"sample": 3, "ratio": 2, "fast": True, "mode": "b", "tags": ["x"]}
    assert validate_params(pipeline(params=Typed), raw, strict=True) == Typed(**raw)


def test_text_longer_than_the_default_limit_is_refused() -> None:
    assert refusal(validate_params, pipeline(params=Typed), {"mode": "x" * 10_001}) == {
        "params.mode": ["is longer than 10,000 characters"]
    }


def test_text_in_a_list_counts_too() -> None:
    assert refusal(validate_params, pipeline(params=Typed), {"tags": ["x" * 10_001]}) == {
        "params.tags": ["is longer than 10,000 characters"]
    }


def test_a_field_with_its_own_max_length_takes_longer_text() -> None:
    assert validate_params(pipeline(params=Typed), {"note": "x" * 15_000}).note == "x" * 15_000


# params_from_text


@pytest.mark.parametrize(
    ("texts", "values"),
    [
        ({"sample": "5", "ratio": "2", "fast": "true"}, {"sample": 5, "ratio": 2, "fast": True}),
        ({"mode": "5", "note": "true"}, {"mode": "5", "note": "true"}),
        ({"sample": "many", "tags": '["a", "b"]'}, {"sample": "many", "tags": ["a", "b"]}),
        ({"unknown": "7"}, {"unknown": 7}),
    ],
)
def test_text_becomes_the_json_value_the_parameter_takes(
    texts: dict[str, str], values: dict[str, Any]
) -> None:
    assert params_from_text(Typed.model_json_schema(), texts) == values


class WithChoices(BaseModel):
    level: Level = Level.LOW
    limit: int | None = None


def test_text_for_enums_and_optional_numbers_is_converted_by_their_schema() -> None:
    schema = WithChoices.model_json_schema()
    assert params_from_text(schema, {"level": "2", "limit": "9"}) == {"level": 2, "limit": 9}
    assert params_from_text(schema, {"level": "high", "limit": "null"}) == {
        "level": "high",
        "limit": None,
    }


class Listed(BaseModel):
    names: list[str] = Field([], max_length=2)


def test_the_max_length_of_a_list_limits_its_items_not_its_text() -> None:
    assert validate_params(pipeline(params=Listed), {"names": ["x" * 50]}).names == ["x" * 50]
