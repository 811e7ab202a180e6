"""The authoring API: exactly these names are public, and each can be imported."""

from __future__ import annotations

import importlib
import types

import pytest

import gristmill

PUBLIC_API = [
    "Access",
    "Ancestor",
    "CancelledError",
    "Command",
    "DefinitionError",
    "FunctionMapTask",
    "FunctionTask",
    "GristmillError",
    "InputFile",
    "InputKind",
    "Inputs",
    "MapTask",
    "OutputFile",
    "Pipeline",
    "PreviousResult",
    "Reference",
    "Reservoir",
    "RunContext",
    "RunState",
    "StepState",
    "StepTimeoutError",
    "SubmissionError",
    "Task",
    "TaskError",
    "items",
    "map_step",
    "reference",
    "task",
]

PUBLIC_MODULES = ["items"]
"""Modules of the API (the item readers of map steps, ``gristmill.items.json_lines``)."""


def test_all_lists_exactly_the_public_api() -> None:
    assert gristmill.__all__ == PUBLIC_API


def test_all_is_sorted() -> None:
    assert gristmill.__all__ == sorted(gristmill.__all__)


def test_every_public_name_in_the_package_is_listed_in_all() -> None:
    public = sorted(
        name
        for name, value in vars(gristmill).items()
        if not name.startswith("_")
        and (not isinstance(value, types.ModuleType) or name in PUBLIC_MODULES)
    )
    assert public == sorted(gristmill.__all__)


@pytest.mark.parametrize("name", PUBLIC_API)
def test_public_name_is_importable_from_the_package(name: str) -> None:
    # ``from gristmill import name`` reads the attribute of the freshly imported package.
    package = importlib.import_module("gristmill")
    assert getattr(package, name, None) is not None
