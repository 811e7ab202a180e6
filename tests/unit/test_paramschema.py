"""Parameters as JSON Schema and back: the model made from a model's schema has the same schema
and accepts, refuses and converts the same values."""

from __future__ import annotations

from enum import Enum, IntEnum, StrEnum
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator

from gristmill.authoring.paramschema import params_model, python_validators
from gristmill.errors import DefinitionError


class Colour(StrEnum):
    red = "red"
    blue = "blue"


class Level(IntEnum):
    low = 1
    high = 2


class Everything(BaseModel):
    """Every kind of parameter the format carries."""

    model_config = {"extra": "forbid"}
    name: str = Field(description="Who runs it", min_length=1)
    top: int = Field(10, ge=1, le=1000)
    ratio: float = Field(0.5, gt=0, lt=1, multiple_of=0.25)
    strict: bool = False
    colour: Colour = Colour.red
    level: Level = Level.low
    mode: Literal["fast", "slow"] = "fast"
    label: str | None = Field(None, pattern="^[a-z]+$", max_length=10)
    tags: list[str] = Field(default_factory=list, max_length=3)
    sizes: list[int] = Field([1, 2], min_length=1)


def test_the_made_model_has_the_same_schema() -> None:
    schema = Everything.model_json_schema()
    assert params_model(schema).model_json_schema() == schema


GOOD: list[dict[str, Any]] = [
    {"name": "a"},
    {"name": "a", "top": "20", "ratio": 0.75, "strict": "true", "colour": "blue"},
    {"name": "b", "level": 2, "mode": "slow", "label": "abc", "tags": ["x"], "sizes": [3]},
]
BAD: list[dict[str, Any]] = [
    {},
    {"name": ""},
    {"name": "a", "top": 0},
    {"name": "a", "ratio": 0.3},
    {"name": "a", "colour": "green"},
    {"name": "a", "level": 3},
    {"name": "a", "mode": "medium"},
    {"name": "a", "label": "ABC"},
    {"name": "a", "tags": ["1", "2", "3", "4"]},
    {"name": "a", "sizes": []},
    {"name": "a", "other": 1},
]


@pytest.mark.parametrize("values", GOOD)
def test_the_made_model_accepts_and_converts_values_as_the_original(values: dict[str, Any]) -> None:
    made = params_model(Everything.model_json_schema())
    original = Everything.model_validate(values).model_dump(mode="json")
    assert made.model_validate(values).model_dump(mode="json") == original


@pytest.mark.parametrize("values", BAD)
def test_the_made_model_refuses_what_the_original_refuses(values: dict[str, Any]) -> None:
    made = params_model(Everything.model_json_schema())
    with pytest.raises(ValidationError) as original:
        Everything.model_validate(values)
    with pytest.raises(ValidationError) as copy:
        made.model_validate(values)
    assert [e["loc"] for e in copy.value.errors()] == [e["loc"] for e in original.value.errors()]


def test_a_choice_keeps_its_enum_so_commands_get_its_value() -> None:
    made = params_model(Everything.model_json_schema())
    colour = made.model_validate({"name": "a", "colour": "blue"}).colour  # type: ignore[attr-defined]
    assert isinstance(colour, Enum) and colour.value == "blue"


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {"properties": {"x": {"type": "object"}}},
            "params.properties.x: type 'object' is not supported; a parameter is text (string), "
            "a whole number (integer), a number, a boolean, a list (array) of these, or a choice "
            "(enum)",
        ),
        (
            {"properties": {"x": {"type": "string", "format": "date", "oneOf": []}}},
            "params.properties.x: the JSON Schema keyword 'oneOf' is not supported in a "
            "pipeline's parameters",
        ),
        (
            {"properties": {"x": {"$ref": "#/$defs/Nope"}}},
            "params.properties.x: $ref '#/$defs/Nope' must name an enum under $defs",
        ),
        (
            {"properties": {}, "required": ["x"]},
            "params.required: names 'x', which is not a parameter",
        ),
        (
            {"properties": {}, "patternProperties": {}},
            "params: the JSON Schema keyword 'patternProperties' is not supported at the top of "
            "a pipeline's parameters",
        ),
        ({"properties": {"x": 3}}, "params.properties.x: must be a JSON Schema (a mapping)"),
    ],
)
def test_what_the_format_cannot_carry_is_refused_naming_the_parameter(
    schema: dict[str, Any], message: str
) -> None:
    with pytest.raises(DefinitionError) as refused:
        params_model(schema)
    assert refused.value.detail == message


def test_validators_written_in_python_are_named() -> None:
    class Checked(BaseModel):
        year: int = 2000

        @field_validator("year")
        @classmethod
        def recent(cls, value: int) -> int:
            return value

    assert python_validators(Checked) == ["recent"]
    assert python_validators(Everything) == []
