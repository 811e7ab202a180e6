"""Pipelines: checked when defined, with a message that names the pipeline and the step."""

from __future__ import annotations

import os.path
import types
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from gristmill import Access, DefinitionError, Inputs, Pipeline, RunContext, Task, task
from gristmill.authoring.pipelines import NoParams


class Params(BaseModel):
    sample: int = 100
    mode: str = "fast"


@task
def parse(run: Any) -> dict[str, Any]:
    return {}


@task
def clean(run: Any, upstream: Mapping[str, Any]) -> dict[str, Any]:
    return {}


@task(needs=["parse"], uses=["sample"])
def count(run: Any, upstream: Mapping[str, Any]) -> dict[str, Any]:
    return {}


class Report(Task):
    title = "Report"

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> Any:
        return {}


class Needy(Task):
    def __init__(self, path: str):
        self.path = path


def definition_error(*args: Any, **kwargs: Any) -> str:
    """The message of the DefinitionError that ``Pipeline(*args, **kwargs)`` raises."""
    with pytest.raises(DefinitionError) as caught:
        Pipeline(*args, **kwargs)
    return str(caught.value)


# Definition mistakes


@pytest.mark.parametrize("name", ["Word Count", "wordcount!", "-leading-dash", "", "x" * 65])
def test_a_bad_pipeline_name_is_refused(name: str) -> None:
    assert definition_error(name, [parse]) == (
        f"pipeline name {name!r} must be 1-64 lower-case letters, digits, '_' or '-', "
        "starting with a letter or digit"
    )


def test_a_pipeline_name_with_a_trailing_newline_is_refused() -> None:
    assert definition_error("wordcount\n", [parse]) == (
        "pipeline name 'wordcount\\n' must be 1-64 lower-case letters, digits, '_' or '-', "
        "starting with a letter or digit"
    )


def test_a_pipeline_name_that_is_not_text_is_refused() -> None:
    assert definition_error(7, [parse]) == (
        "pipeline name 7 must be 1-64 lower-case letters, digits, '_' or '-', "
        "starting with a letter or digit"
    )


@pytest.mark.parametrize("steps", [[], (), "parse"])
def test_a_pipeline_without_a_list_of_steps_is_refused(steps: Any) -> None:
    assert (
        definition_error("p", steps) == "pipeline 'p': a pipeline needs a non-empty list of steps"
    )


def test_two_steps_with_the_same_name_are_refused() -> None:
    assert definition_error("p", [parse, task(name="parse")(clean.__wrapped__)]) == (
        "pipeline 'p': two steps are named 'parse'; give one of them another name "
        "(name=... on the task)"
    )


def test_a_plain_function_as_a_step_is_refused() -> None:
    def tidy(run: Any) -> None:
        pass

    assert definition_error("p", [parse, tidy]) == (
        "pipeline 'p': step 2 (tidy) is a plain callable; decorate it with @task or subclass Task"
    )


def test_a_step_that_is_not_callable_is_refused() -> None:
    assert definition_error("p", [42]) == (
        "pipeline 'p': step 1 (42) is not a task: expected a Task subclass or instance, "
        "a @task function or a Command"
    )


def test_a_task_class_that_needs_constructor_arguments_is_refused() -> None:
    assert definition_error("p", [parse, Needy]) == (
        "pipeline 'p': step 2 (Needy) cannot be made without arguments: "
        "Needy.__init__() missing 1 required positional argument: 'path'; "
        "list an instance instead"
    )


def test_needs_naming_a_later_step_is_refused() -> None:
    early = task(name="early", needs=["parse"])(clean.__wrapped__)
    assert definition_error("p", [early, parse]) == (
        "pipeline 'p', step 'early': needs 'parse', which is a later step of this pipeline; "
        "a step can only read the results of steps before it"
    )


def test_needs_naming_something_that_is_not_a_step_is_refused() -> None:
    lost = task(name="lost", needs=["nowhere"])(clean.__wrapped__)
    assert definition_error("p", [parse, lost]) == (
        "pipeline 'p', step 'lost': needs 'nowhere', which is not a step of this pipeline; "
        "a step can only read the results of steps before it"
    )


def test_uses_naming_an_unknown_parameter_is_refused() -> None:
    greedy = task(name="greedy", uses=["size"])(parse.__wrapped__)
    assert definition_error("p", [greedy], params=Params) == (
        "pipeline 'p', step 'greedy': uses parameter 'size', which the parameter model does not "
        "define (known: mode, sample)"
    )


def test_uses_in_a_pipeline_without_parameters_is_refused() -> None:
    assert definition_error("p", [parse, count]) == (
        "pipeline 'p', step 'count': uses parameter 'sample', which the parameter model does not "
        "define (known: none)"
    )


@pytest.mark.parametrize("params", [dict, Params(), "Params"])
def test_params_that_are_not_a_pydantic_model_class_are_refused(params: Any) -> None:
    assert definition_error("p", [parse], params=params) == (
        "pipeline 'p': params must be a pydantic BaseModel subclass"
    )


def test_an_unknown_access_value_is_refused() -> None:
    assert definition_error("p", [parse], access="everyone") == (
        "pipeline 'p': access 'everyone' is not one of: anyone, signed-in, staff"
    )


def test_a_bad_step_name_is_refused() -> None:
    assert definition_error("p", [task(name="2nd pass")(parse.__wrapped__)]) == (
        "pipeline 'p', step '2nd pass': a step name must start with a letter or '_' and hold "
        "only letters, digits, '_' and '-' (at most 100 characters)"
    )


def test_a_non_positive_step_timeout_is_refused() -> None:
    assert definition_error("p", [parse], step_timeout=0) == (
        "pipeline 'p': step_timeout must be positive"
    )


def test_fewer_than_one_attempt_is_refused() -> None:
    assert definition_error("p", [parse], max_attempts=0) == (
        "pipeline 'p': max_attempts must be at least 1"
    )


def test_a_validator_that_is_not_callable_is_refused() -> None:
    assert definition_error("p", [parse], validators=[42]) == (
        "pipeline 'p': validator 42 is not callable"
    )


def test_a_definition_error_names_the_pipeline_and_step_separately() -> None:
    with pytest.raises(DefinitionError) as caught:
        Pipeline("p", [task(name="2nd")(parse.__wrapped__)])
    assert (caught.value.pipeline, caught.value.step) == ("p", "2nd")


# What a pipeline is made of


def test_task_classes_are_instantiated() -> None:
    pipeline = Pipeline("p", [parse, Report])
    assert isinstance(pipeline.steps[1], Report)


def test_task_instances_are_kept_as_given() -> None:
    report = Report()
    assert Pipeline("p", [parse, report]).steps[1] is report


def test_steps_can_be_given_as_a_tuple() -> None:
    assert Pipeline("p", (parse, clean)).step_names == ("parse", "clean")


def test_a_step_is_found_by_name() -> None:
    assert Pipeline("p", [parse, clean]).step("clean") is clean


def test_a_pipeline_without_params_takes_no_parameters() -> None:
    assert Pipeline("p", [parse]).params is NoParams


def test_the_title_defaults_to_the_name_in_words() -> None:
    assert Pipeline("json-check", [parse]).title == "Json check"


def test_a_step_reads_every_earlier_step_by_default() -> None:
    pipeline = Pipeline("p", [parse, clean, Report])
    assert pipeline.upstream_of(pipeline.step("Report")) == ("parse", "clean")


def test_the_first_step_reads_no_upstream_results() -> None:
    pipeline = Pipeline("p", [parse, clean])
    assert pipeline.upstream_of(parse) == ()


def test_a_step_with_needs_reads_only_those_steps() -> None:
    pipeline = Pipeline("p", [parse, clean, count], params=Params)
    assert pipeline.upstream_of(count) == ("parse",)


def test_a_step_uses_every_parameter_by_default() -> None:
    pipeline = Pipeline("p", [parse], params=Params)
    assert pipeline.params_used_by(parse) == ("sample", "mode")


def test_a_step_with_uses_reads_only_those_parameters() -> None:
    pipeline = Pipeline("p", [parse, count], params=Params)
    assert pipeline.params_used_by(count) == ("sample",)


def test_describe_gives_what_a_client_needs_to_submit_a_run() -> None:
    pipeline = Pipeline(
        "word-count",
        [parse, Report],
        description="Counts words.",
        inputs=Inputs(kinds=["file"], extensions=["txt"], max_size=1024),
        params=Params,
        queue="slow",
        retention=timedelta(days=2),
        access=Access.SIGNED_IN,
    )
    assert pipeline.describe() == {
        "name": "word-count",
        "title": "Word count",
        "description": "Counts words.",
        "steps": [{"name": "parse", "title": "parse"}, {"name": "Report", "title": "Report"}],
        "inputs": {
            "kinds": ["file"],
            "extensions": ["txt"],
            "max_size": 1024,
            "min_count": 1,
            "max_count": 1,
        },
        "params_schema": Params.model_json_schema(),
        "queue": "slow",
        "retention_seconds": 2 * 24 * 3600,
        "access": "signed-in",
    }


def test_describe_gives_the_params_json_schema() -> None:
    schema = Pipeline("p", [parse], params=Params).describe()["params_schema"]
    assert schema["properties"] == {
        "sample": {"default": 100, "title": "Sample", "type": "integer"},
        "mode": {"default": "fast", "title": "Mode", "type": "string"},
    }


def test_repr_lists_the_steps() -> None:
    assert repr(Pipeline("p", [parse, clean])) == "<Pipeline 'p': parse, clean>"


# Validators


def test_validators_given_as_a_list_are_kept_in_order() -> None:
    def second(item: Any) -> bool:
        return True

    def first(item: Any) -> bool:
        return True

    assert Pipeline("p", [parse], validators=[second, first]).validators == (second, first)


def test_validators_given_as_a_module_are_its_public_functions_by_name() -> None:
    checks = types.ModuleType("site_checks")

    def not_empty(item: Any) -> bool:
        return True

    def is_utf8(item: Any) -> bool:
        return True

    def _read_head(item: Any) -> bytes:
        return b""

    for function in (not_empty, is_utf8, _read_head):
        function.__module__ = checks.__name__
        setattr(checks, function.__name__, function)
    checks.exists = os.path.exists  # imported into the module, defined elsewhere
    checks.LIMIT = 10
    checks.Checker = type("Checker", (), {"__module__": checks.__name__})

    pipeline = Pipeline("p", [parse], validators=checks)

    assert pipeline.validators == (is_utf8, not_empty)


def test_templates_must_name_a_folder_that_exists(tmp_path: Path) -> None:
    @task
    def one(run: RunContext) -> int:
        return 1

    with pytest.raises(DefinitionError, match="templates folder 'nowhere' does not exist"):
        Pipeline("p", [one], inputs=Inputs(min_count=0), templates="nowhere")
    (tmp_path / "mine").mkdir()
    pipeline = Pipeline("p", [one], inputs=Inputs(min_count=0), templates=tmp_path / "mine")
    assert pipeline.template_dirs[0] == tmp_path / "mine"
    with pytest.raises(DefinitionError, match="page_template must be a template name"):
        Pipeline("p", [one], inputs=Inputs(min_count=0), page_template="")


@pytest.mark.parametrize("webhooks", ["https://hooks.example/a", ["ftp://hooks.example/a"], [3]])
def test_webhooks_that_are_not_a_list_of_http_urls_are_refused(webhooks: Any) -> None:
    message = definition_error("hooked", [parse], webhooks=webhooks)
    assert message == (
        f"pipeline 'hooked': webhooks must be a list of http:// or https:// URLs, not {webhooks!r}"
    )


def test_a_pipelines_webhooks_and_their_key_are_kept() -> None:
    pipeline = Pipeline(
        "hooked", [parse], webhooks=["https://hooks.example/a"], webhook_secret="key"
    )
    assert (pipeline.webhooks, pipeline.webhook_secret) == (("https://hooks.example/a",), "key")
