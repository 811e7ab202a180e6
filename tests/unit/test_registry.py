"""The registry: pipelines found from files and dotted paths, and looked up by name."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gristmill import Pipeline, task
from gristmill.authoring.registry import Registry, load_spec
from gristmill.demo import pipelines as demo
from gristmill.errors import ConfigurationError, NotFoundError

PIPELINE_FILE = """
from gristmill import Pipeline, task


@task
def shout(run):
    return run.pipeline.upper()


loud = Pipeline("loud", [shout])
"""


@task
def step(run: Any) -> None:
    pass


@pytest.fixture(autouse=True)
def forget_imported_files() -> Iterator[None]:
    """Unload the modules that loading pipeline files adds, so tests do not share them."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("gristmill_pipelines_"):
            del sys.modules[name]


def write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def configuration_error(spec: str) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_spec(spec)
    return str(caught.value)


# load_spec


def test_a_python_file_path_loads_the_pipelines_it_defines(tmp_path: Path) -> None:
    path = write(tmp_path, "loud.py", PIPELINE_FILE)
    assert [p.name for p in load_spec(str(path))] == ["loud"]


def test_a_python_file_loads_into_the_same_module_each_time(tmp_path: Path) -> None:
    path = write(tmp_path, "loud.py", PIPELINE_FILE)
    assert load_spec(str(path))[0] is load_spec(str(path))[0]


def test_a_dotted_module_path_loads_every_pipeline_in_the_module() -> None:
    assert [p.name for p in load_spec("gristmill.demo.pipelines")] == [
        "wordcount",
        "json-check",
        "records-check",
    ]


def test_module_colon_attribute_loads_that_pipeline() -> None:
    assert load_spec("gristmill.demo.pipelines:json_check") == [demo.json_check]


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "missing.py"
    assert configuration_error(str(missing)) == f"pipeline file {str(missing)!r} does not exist"


def test_a_module_that_defines_no_pipelines_is_reported() -> None:
    assert configuration_error("gristmill.errors") == "'gristmill.errors' defines no pipelines"


def test_a_file_that_defines_no_pipelines_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.py", "LIMIT = 10\n")
    assert configuration_error(str(path)) == f"{str(path)!r} defines no pipelines"


def test_a_module_that_cannot_be_imported_is_reported() -> None:
    assert configuration_error("gristmill.nowhere") == (
        "cannot import pipelines from 'gristmill.nowhere': ModuleNotFoundError: "
        "No module named 'gristmill.nowhere'"
    )


def test_a_missing_attribute_is_reported() -> None:
    assert configuration_error("gristmill.demo.pipelines:nowhere") == (
        "module 'gristmill.demo.pipelines' has no attribute 'nowhere'"
    )


def test_an_attribute_that_is_not_a_pipeline_is_reported() -> None:
    assert configuration_error("gristmill.demo.pipelines:WORD") == (
        "gristmill.demo.pipelines:WORD is not a pipeline, a list of pipelines or a module"
    )


def test_a_file_that_fails_to_import_can_be_loaded_once_fixed(tmp_path: Path) -> None:
    path = write(tmp_path, "loud.py", "raise RuntimeError('half written')\n")
    with pytest.raises(ConfigurationError) as caught:
        load_spec(str(path))
    assert (
        str(caught.value) == f"cannot load pipeline file {str(path)!r}: RuntimeError: half written"
    )
    write(tmp_path, "loud.py", PIPELINE_FILE)
    assert load_spec(str(path))[0].name == "loud"


# Registry


def test_a_registry_offers_the_pipelines_of_its_specs() -> None:
    registry = Registry(specs=["gristmill.demo.pipelines"])
    assert registry.get("wordcount") is demo.wordcount
    assert [p.name for p in registry] == ["wordcount", "json-check", "records-check"]


def test_the_same_pipeline_from_two_specs_is_offered_once() -> None:
    registry = Registry(specs=["gristmill.demo.pipelines", "gristmill.demo.pipelines:wordcount"])
    assert len(registry) == 3  # wordcount, json-check, records-check: wordcount once


def test_a_pipeline_bound_to_two_names_is_offered_once(tmp_path: Path) -> None:
    path = write(tmp_path, "aliased.py", PIPELINE_FILE + "also_loud = loud\n")
    assert len(Registry(specs=[str(path)])) == 1


def test_a_registry_knows_which_names_it_offers() -> None:
    registry = Registry([demo.wordcount])
    assert "wordcount" in registry
    assert "json-check" not in registry


def test_two_pipelines_with_the_same_name_are_refused() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Registry([Pipeline("twin", [step]), Pipeline("twin", [step])])
    assert str(caught.value) == "two pipelines are named 'twin'"


def test_an_unknown_pipeline_name_is_not_found() -> None:
    with pytest.raises(NotFoundError) as caught:
        Registry([demo.wordcount]).get("nowhere")
    assert str(caught.value) == "no pipeline named 'nowhere'"


def test_not_found_is_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        Registry().get("nowhere")
