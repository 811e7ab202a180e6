"""Fingerprints: code normalised so only real changes count, and the words that say what changed."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gristmill.authoring.fingerprints import Fingerprint, explain_change, normalised_source

TITLE = "Count words"


class SourceLoader:
    """Writes code to files and imports them, so that ``inspect`` can find the source."""

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch):
        self.directory = directory
        self.monkeypatch = monkeypatch

    def module(self, name: str, source: str) -> ModuleType:
        path = self.directory / f"{name}.py"
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        # inspect finds a class's file through sys.modules.
        self.monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module

    def normalised(self, name: str, source: str, attribute: str = "count") -> str:
        """The normalised source of ``attribute`` (undecorated) in a module made of ``source``."""
        value = getattr(self.module(name, source), attribute)
        normalised = normalised_source(getattr(value, "__wrapped__", value))
        assert normalised.startswith("Module("), "the source was not found"
        return normalised


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SourceLoader:
    return SourceLoader(tmp_path, monkeypatch)


PLAIN = """
def count(run):
    words = run.input.path.read_text().split()
    return {"words": len(words)}
"""


def fingerprint(**changes: Any) -> Fingerprint:
    components: dict[str, Any] = {
        "task": "shop.steps.CountWords",
        "code": "c0de",
        "version": "1",
        "params": {"sample": 100, "mode": "fast"},
        "upstream": {"parse": "a1b2"},
        "inputs": (("data.txt", "5e11"),),
    }
    components.update(changes)
    return Fingerprint(**components)


# normalised_source


def test_comments_do_not_change_the_normalised_source(load: SourceLoader) -> None:
    commented = """
    def count(run):
        # Split on any whitespace.
        words = run.input.path.read_text().split()  # a list of str
        return {"words": len(words)}
    """
    assert load.normalised("commented", commented) == load.normalised("plain", PLAIN)


def test_blank_lines_and_formatting_do_not_change_the_normalised_source(load: SourceLoader) -> None:
    reformatted = """
    def count( run ):

        words = (
            run.input.path.read_text()
               .split()
        )

        return {
            'words': len(words),
        }
    """
    assert load.normalised("reformatted", reformatted) == load.normalised("plain", PLAIN)


def test_docstrings_do_not_change_the_normalised_source(load: SourceLoader) -> None:
    documented = '''
    def count(run):
        """Count the words of the input."""
        words = run.input.path.read_text().split()
        return {"words": len(words)}
    '''
    assert load.normalised("documented", documented) == load.normalised("plain", PLAIN)


def test_decorators_do_not_change_the_normalised_source(load: SourceLoader) -> None:
    decorated = """
    from gristmill import task

    @task(version="2", title="Count words")
    def count(run):
        words = run.input.path.read_text().split()
        return {"words": len(words)}
    """
    assert load.normalised("decorated", decorated) == load.normalised("plain", PLAIN)


def test_a_changed_expression_changes_the_normalised_source(load: SourceLoader) -> None:
    changed = """
    def count(run):
        words = run.input.path.read_text().split(",")
        return {"words": len(words)}
    """
    assert load.normalised("changed", changed) != load.normalised("plain", PLAIN)


def test_an_added_statement_changes_the_normalised_source(load: SourceLoader) -> None:
    extended = """
    def count(run):
        words = run.input.path.read_text().split()
        run.log(str(len(words)))
        return {"words": len(words)}
    """
    assert load.normalised("extended", extended) != load.normalised("plain", PLAIN)


def test_a_class_docstring_and_comments_do_not_change_its_normalised_source(
    load: SourceLoader,
) -> None:
    bare = """
    class Count:
        def process(self, run, upstream):
            return len(upstream)
    """
    documented = '''
    class Count:
        """Count the upstream results."""

        def process(self, run, upstream):
            """How many there are."""
            return len(upstream)  # one per earlier step
    '''
    first = load.normalised("bare_class", bare, "Count")
    assert first == load.normalised("documented_class", documented, "Count")


def test_code_whose_source_is_gone_falls_back_to_its_bytecode(
    load: SourceLoader, tmp_path: Path
) -> None:
    module = load.module("vanished", "def one(run):\n    return 1\n\ndef two(run):\n    return 2\n")
    (tmp_path / "vanished.py").unlink()
    one, two = normalised_source(module.one), normalised_source(module.two)
    assert not one.startswith("Module(")
    assert one != two


# Fingerprint


def test_equal_components_give_the_same_digest() -> None:
    assert fingerprint().digest == fingerprint().digest


def test_the_digest_does_not_depend_on_the_order_of_parameters() -> None:
    reordered = fingerprint(params={"mode": "fast", "sample": 100})
    assert reordered.digest == fingerprint().digest


def test_a_changed_component_changes_the_digest() -> None:
    assert fingerprint(params={"sample": 1000, "mode": "fast"}).digest != fingerprint().digest


def test_the_digest_of_known_components_is_pinned() -> None:
    # Stored results are compared by digest: a new digest format would make every one stale.
    assert (
        fingerprint().digest == "68cc103095c438e2e89a8008486d722431e107c316b2b8e45b3e07798f9541ef"
    )


def test_a_fingerprint_round_trips_through_to_dict_and_from_dict() -> None:
    original = fingerprint()
    rebuilt = Fingerprint.from_dict(original.to_dict())
    assert rebuilt == original
    assert rebuilt.digest == original.digest


def test_a_fingerprint_round_trips_through_json() -> None:
    original = fingerprint()
    stored = json.loads(json.dumps(original.to_dict()))
    assert Fingerprint.from_dict(stored) == original


def test_to_dict_gives_plain_json_data() -> None:
    assert fingerprint().to_dict() == {
        "task": "shop.steps.CountWords",
        "code": "c0de",
        "version": "1",
        "params": {"sample": 100, "mode": "fast"},
        "upstream": {"parse": "a1b2"},
        "inputs": [["data.txt", "5e11"]],
    }


# explain_change


def test_nothing_changed_gives_no_reasons() -> None:
    assert explain_change(fingerprint(), fingerprint(), task_title=TITLE) == []


def test_a_code_change_is_explained() -> None:
    reasons = explain_change(fingerprint(), fingerprint(code="beef"), task_title=TITLE)
    assert reasons == ["code of `Count words` changed"]


def test_a_version_change_is_explained() -> None:
    reasons = explain_change(fingerprint(), fingerprint(version="2"), task_title=TITLE)
    assert reasons == ["version of `Count words` 1 → 2"]


def test_a_version_set_for_the_first_time_is_explained() -> None:
    reasons = explain_change(fingerprint(version=None), fingerprint(), task_title=TITLE)
    assert reasons == ["version of `Count words` none → 1"]


def test_a_parameter_change_is_explained() -> None:
    new = fingerprint(params={"sample": 1000, "mode": "fast"})
    reasons = explain_change(fingerprint(), new, task_title=TITLE)
    assert reasons == ["parameter `sample` 100 → 1000"]


def test_a_text_parameter_change_is_explained_with_quotes() -> None:
    new = fingerprint(params={"sample": 100, "mode": "slow"})
    reasons = explain_change(fingerprint(), new, task_title=TITLE)
    assert reasons == ['parameter `mode` "fast" → "slow"']


def test_an_added_parameter_is_explained() -> None:
    new = fingerprint(params={"sample": 100, "mode": "fast", "top": 10})
    reasons = explain_change(fingerprint(), new, task_title=TITLE)
    assert reasons == ["parameter `top` added (10)"]


def test_a_parameter_no_longer_used_is_explained() -> None:
    new = fingerprint(params={"sample": 100})
    reasons = explain_change(fingerprint(), new, task_title=TITLE)
    assert reasons == ["parameter `mode` no longer used"]


def test_a_recomputed_upstream_step_is_explained() -> None:
    new = fingerprint(upstream={"parse": "ffff"})
    reasons = explain_change(fingerprint(), new, task_title=TITLE)
    assert reasons == ["upstream step `parse` was recomputed"]


def test_a_newly_read_upstream_step_is_explained() -> None:
    new = fingerprint(upstream={"parse": "a1b2", "clean": "c1c1"})
    reasons = explain_change(fingerprint(), new, task_title=TITLE)
    assert reasons == ["now reads upstream step `clean`"]


def test_an_upstream_step_no_longer_read_is_explained() -> None:
    reasons = explain_change(fingerprint(), fingerprint(upstream={}), task_title=TITLE)
    assert reasons == ["no longer reads upstream step `parse`"]


def test_changed_inputs_are_explained() -> None:
    new = fingerprint(inputs=(("data.txt", "0ther"),))
    reasons = explain_change(fingerprint(), new, task_title=TITLE)
    assert reasons == ["the inputs changed"]


def test_a_different_task_is_explained_instead_of_its_code() -> None:
    new = fingerprint(task="shop.steps.CountLines", code="beef")
    reasons = explain_change(fingerprint(), new, task_title="Count lines")
    assert reasons == [
        "the step now runs `shop.steps.CountLines` instead of `shop.steps.CountWords`"
    ]


def test_every_change_is_explained_in_order() -> None:
    new = fingerprint(
        code="beef",
        version="2",
        params={"sample": 1000, "mode": "fast"},
        upstream={"parse": "ffff"},
        inputs=(("data.txt", "0ther"),),
    )
    assert explain_change(fingerprint(), new, task_title=TITLE) == [
        "code of `Count words` changed",
        "version of `Count words` 1 → 2",
        "parameter `sample` 100 → 1000",
        "upstream step `parse` was recomputed",
        "the inputs changed",
    ]


@pytest.mark.parametrize("value", [1, 1.5, "x", [1, 2], {"a": 1}, None, True])
def test_an_unchanged_parameter_is_not_reported(value: Any) -> None:
    old = fingerprint(params={"sample": value})
    new = fingerprint(params={"sample": value})
    assert explain_change(old, new, task_title=TITLE) == []


def test_bumping_a_class_version_is_not_also_a_code_change(load: SourceLoader) -> None:
    first = (
        "class Count:\n    version = '1'\n    def process(self, run, upstream):\n        return 1\n"
    )
    second = first.replace("'1'", "'2'")
    assert load.normalised("v1", first, "Count") == load.normalised("v2", second, "Count")


def test_presentation_does_not_change_a_class_tasks_normalised_source(
    load: SourceLoader,
) -> None:
    plain = """
    class Count:
        title = "Count"
        template = "count.html"

        def process(self, run, upstream):
            return len(upstream)

        def context(self, run, result):
            return {"n": result}
    """
    restyled = """
    class Count:
        title = "Count the results"
        template = "other/count.html"
        description = "How many earlier steps there are."
        staff_only = ("n",)
        log_level = "WARNING"
        packages = ("pytest",)
        version = "1"

        def process(self, run, upstream):
            return len(upstream)

        def context(self, run, result):
            return {"count": result, "shown": True}
    """
    assert load.normalised("plain_task", plain, "Count") == load.normalised(
        "restyled_task", restyled, "Count"
    )
    changed = restyled.replace("len(upstream)", "len(upstream) + 1")
    assert load.normalised("restyled_task", restyled, "Count") != load.normalised(
        "changed_task", changed, "Count"
    )


def test_a_package_upgrade_is_explained_with_both_versions() -> None:
    old = fingerprint(packages={"jsonschema": "4.25"})
    new = fingerprint(packages={"jsonschema": "4.26"})
    assert explain_change(old, new, task_title=TITLE) == ["jsonschema 4.25 → 4.26"]


def test_a_changed_upstream_file_is_explained_by_name() -> None:
    old = fingerprint(files={"convert": (("data.json", "aaaa"), ("old.csv", "bbbb"))})
    new = fingerprint(files={"convert": (("data.json", "cccc"), ("new.csv", "dddd"))})
    assert explain_change(old, new, task_title=TITLE) == [
        "output `data.json` of step `convert` changed",
        "output `new.csv` of step `convert` is new",
        "output `old.csv` of step `convert` is gone",
    ]


def test_fingerprints_without_files_or_packages_keep_their_digest() -> None:
    # Stored before these components existed: their digests (and so their results) still hold.
    stored = fingerprint().to_dict()
    assert "files" not in stored and "packages" not in stored
    assert Fingerprint.from_dict(stored).digest == fingerprint(files={}, packages={}).digest
