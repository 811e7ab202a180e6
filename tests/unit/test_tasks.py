"""Tasks: the @task decorator, and what a Task does unless a subclass says otherwise."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import gristmill.authoring.tasks
from gristmill import DefinitionError, FunctionTask, PreviousResult, RunContext, Task, task
from gristmill.authoring.fingerprints import Fingerprint


def make_run(tmp_path: Path) -> RunContext:
    return RunContext(
        run_id="r1",
        pipeline="wordcount",
        step="count",
        inputs=(),
        params=None,
        workdir=tmp_path,
        upstream={},
    )


def previous(*, state: str = "succeeded", stale_reasons: tuple[str, ...] = ()) -> PreviousResult:
    return PreviousResult(
        state=state,
        result={"words": 3},
        fingerprint=Fingerprint(task="shop.Count", code="c0de"),
        stale_reasons=stale_reasons,
    )


@task
def shout(run: Any) -> str:
    """Upper-case the run's pipeline name."""
    return str(run.pipeline).upper()


@task(name="merge", title="Merge results", version="2", needs=["shout"], uses=["top"], timeout=30)
def combine(run: Any, upstream: Mapping[str, Any]) -> dict[str, Any]:
    return {"pipeline": run.pipeline, "seen": sorted(upstream)}


class Parse(Task):
    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> Any:
        return {"parsed": True}


class Summarise(Task):
    name = "summary"

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> Any:
        return {"summary": len(upstream)}


class Unfinished(Task):
    pass


# @task


def test_bare_task_makes_a_function_task() -> None:
    assert isinstance(shout, FunctionTask)


def test_task_with_options_makes_a_function_task() -> None:
    assert isinstance(combine, FunctionTask)


def test_task_options_set_the_task_attributes() -> None:
    assert (combine.name, combine.title, combine.version) == ("merge", "Merge results", "2")
    assert (combine.needs, combine.uses, combine.timeout) == (["shout"], ["top"], 30)


def test_a_decorated_function_is_still_callable_as_the_function(tmp_path: Path) -> None:
    assert shout(make_run(tmp_path)) == "WORDCOUNT"


def test_a_decorated_function_exposes_the_original_as_wrapped(tmp_path: Path) -> None:
    original = shout.__wrapped__
    assert not isinstance(original, Task)
    assert original(make_run(tmp_path)) == "WORDCOUNT"


def test_a_decorated_function_keeps_its_docstring() -> None:
    assert shout.__doc__ == "Upper-case the run's pipeline name."


def test_a_one_argument_function_is_processed_with_the_run_only(tmp_path: Path) -> None:
    assert shout.process(make_run(tmp_path), {"earlier": 1}) == "WORDCOUNT"


def test_a_two_argument_function_is_processed_with_the_upstream_results(tmp_path: Path) -> None:
    result = combine.process(make_run(tmp_path), {"shout": "X", "parse": 1})
    assert result == {"pipeline": "wordcount", "seen": ["parse", "shout"]}


def test_a_three_argument_function_is_refused() -> None:
    def count(run: Any, upstream: Any, extra: Any) -> None:
        pass

    with pytest.raises(DefinitionError) as caught:
        task(count)
    assert str(caught.value) == (
        "step 'count': a task function takes the run context, and optionally the upstream "
        "results: def count(run) or def count(run, upstream)"
    )


def test_a_function_without_arguments_is_refused() -> None:
    def count() -> None:
        pass

    with pytest.raises(DefinitionError) as caught:
        task(name="counting")(count)
    assert str(caught.value) == (
        "step 'counting': a task function takes the run context, and optionally the upstream "
        "results: def count(run) or def count(run, upstream)"
    )


def test_keyword_only_arguments_do_not_count_as_positional(tmp_path: Path) -> None:
    def count(run: Any, *, scale: int = 2) -> int:
        return scale

    assert task(count).process(make_run(tmp_path), {}) == 2


def test_task_refuses_something_that_is_not_a_function() -> None:
    with pytest.raises(DefinitionError) as caught:
        task(42)  # type: ignore[call-overload]
    assert str(caught.value) == "@task needs a function, not 42"


def test_task_refuses_a_task() -> None:
    with pytest.raises(DefinitionError) as caught:
        task(shout)
    assert str(caught.value) == f"@task needs a function, not {shout!r}"


def test_the_applicable_option_decides_whether_a_function_task_applies(tmp_path: Path) -> None:
    only_json = task(applicable=lambda run: run.pipeline == "json-check")(shout.__wrapped__)
    assert only_json.is_applicable(make_run(tmp_path)) is False


# Task defaults


def test_a_task_is_applicable_by_default(tmp_path: Path) -> None:
    assert Parse().is_applicable(make_run(tmp_path)) is True


def test_a_function_task_is_applicable_by_default(tmp_path: Path) -> None:
    assert shout.is_applicable(make_run(tmp_path)) is True


def test_a_task_is_needed_when_there_is_no_previous_result(tmp_path: Path) -> None:
    assert Parse().is_needed(make_run(tmp_path), None) is True


def test_a_task_is_needed_when_its_previous_result_is_stale(tmp_path: Path) -> None:
    stale = previous(stale_reasons=("code of `Parse` changed",))
    assert Parse().is_needed(make_run(tmp_path), stale) is True


def test_a_task_is_not_needed_when_its_previous_result_is_current(tmp_path: Path) -> None:
    assert Parse().is_needed(make_run(tmp_path), previous()) is False


def test_a_previous_result_is_stale_only_with_reasons() -> None:
    assert previous(stale_reasons=("the inputs changed",)).stale
    assert not previous().stale


def test_the_default_context_shows_a_dict_result_as_it_is(tmp_path: Path) -> None:
    assert Parse().context(make_run(tmp_path), {"words": 3}) == {"words": 3}


def test_the_default_context_wraps_any_other_result(tmp_path: Path) -> None:
    assert Parse().context(make_run(tmp_path), [1, 2]) == {"result": [1, 2]}


def test_process_must_be_implemented(tmp_path: Path) -> None:
    with pytest.raises(NotImplementedError) as caught:
        Unfinished().process(make_run(tmp_path), {})
    assert str(caught.value) == f"{__name__}.Unfinished must implement process()"


# Names and identity


def test_a_task_class_step_name_defaults_to_the_class_name() -> None:
    assert Parse().step_name == "Parse"


def test_a_task_class_name_attribute_sets_the_step_name() -> None:
    assert Summarise().step_name == "summary"


def test_a_function_task_step_name_defaults_to_the_function_name() -> None:
    assert shout.step_name == "shout"


def test_the_name_option_sets_a_function_task_step_name() -> None:
    assert combine.step_name == "merge"


def test_a_task_identity_is_its_module_and_qualified_name() -> None:
    assert Parse().identity == f"{__name__}.Parse"


def test_a_function_task_identity_is_the_function_module_and_qualified_name() -> None:
    assert shout.identity == f"{__name__}.shout"


def test_repr_names_the_class_and_step() -> None:
    assert repr(Summarise()) == "<Summarise step 'summary'>"


# Code fingerprints


def test_two_different_task_classes_have_different_code_fingerprints() -> None:
    assert Parse().code_fingerprint() != Summarise().code_fingerprint()


def test_two_instances_of_a_class_have_the_same_code_fingerprint() -> None:
    assert Parse().code_fingerprint() == Parse().code_fingerprint()


def test_two_different_function_tasks_have_different_code_fingerprints() -> None:
    assert shout.code_fingerprint() != combine.code_fingerprint()


def test_a_task_class_code_fingerprint_is_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []

    def counting(obj: object) -> str:
        calls.append(obj)
        return "source"

    monkeypatch.setattr(gristmill.authoring.tasks, "normalised_source", counting)

    class Fresh(Task):
        pass

    first, second = Fresh().code_fingerprint(), Fresh().code_fingerprint()
    assert first == second
    assert calls == [Fresh]


def test_a_function_task_code_fingerprint_is_computed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[object] = []

    def counting(obj: object) -> str:
        calls.append(obj)
        return "source"

    monkeypatch.setattr(gristmill.authoring.tasks, "normalised_source", counting)

    def fresh(run: Any) -> None:
        pass

    made = task(fresh)
    first, second = made.code_fingerprint(), made.code_fingerprint()
    assert first == second
    assert calls == [fresh]


# Definition checks


def test_a_task_with_a_valid_definition_passes_its_check() -> None:
    Parse().check_definition()


@pytest.mark.parametrize("name", ["2nd", "with space", "dot.ted", "-dash", "x" * 101, "count\n"])
def test_a_bad_step_name_is_refused(name: str) -> None:
    class Named(Task):
        pass

    step = Named()
    step.name = name
    with pytest.raises(DefinitionError) as caught:
        step.check_definition()
    assert caught.value.detail == (
        "a step name must start with a letter or '_' and hold only letters, digits, "
        "'_' and '-' (at most 100 characters)"
    )


@pytest.mark.parametrize("timeout", [0, -1.5])
def test_a_non_positive_timeout_is_refused(timeout: float) -> None:
    with pytest.raises(DefinitionError) as caught:
        task(timeout=timeout)(shout.__wrapped__).check_definition()
    assert str(caught.value) == "step 'shout': timeout must be a positive number of seconds"


def test_needs_given_as_a_single_string_is_refused() -> None:
    with pytest.raises(DefinitionError) as caught:
        task(needs="parse")(shout.__wrapped__).check_definition()
    assert str(caught.value) == "step 'shout': needs must be a list of names"


def test_uses_holding_a_non_name_is_refused() -> None:
    with pytest.raises(DefinitionError) as caught:
        task(uses=["top", 3])(shout.__wrapped__).check_definition()
    assert str(caught.value) == "step 'shout': uses must be a list of names"
