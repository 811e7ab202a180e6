"""YAML pipelines: every kind of mistake is reported with the file, line, column and field,
in words that say what to write instead; nothing half-read is registered."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import jsonschema
import pytest

import gristmill.library
from gristmill import Command, Pipeline
from gristmill.authoring.yamlimport import load_file, load_text
from gristmill.authoring.yamlschema import pipeline_schema
from gristmill.errors import ConfigurationError, PipelineFileError

LABEL = "pipelines/tools.yaml"


def problems(text: str) -> list[str]:
    with pytest.raises(PipelineFileError) as caught:
        load_text(textwrap.dedent(text).lstrip("\n"), LABEL)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def test_a_step_option_of_the_wrong_type_names_its_line_and_field() -> None:
    assert problems(
        """
        name: tools
        steps:
          - name: count
            command: [wc, -l, "{input}"]
          - task: DetectFormat
          - name: slow
            command: [sleep, "1"]
            timeout: soon
        """
    ) == [f"{LABEL}, line 8, column 14: steps.2.timeout: must be a number of seconds"]


def test_a_missing_field_is_named() -> None:
    assert problems("name: tools\n") == [f"{LABEL}, line 1, column 1: `steps` is missing"]


def test_an_unknown_field_is_named_at_its_key_with_the_fields_there_are() -> None:
    assert problems(
        """
        name: tools
        colour: blue
        steps: [{task: DetectFormat}]
        """
    ) == [
        f"{LABEL}, line 2, column 1: colour: is not a field here (the fields are: access, "
        "ancestor, ancestors_from, description, inputs, max_attempts, name, page_template, "
        "params, priority, queue, retention, step_timeout, steps, templates, title, webhooks)"
    ]


def test_every_mistake_of_a_document_is_reported_in_the_files_order() -> None:
    assert problems(
        """
        name: Tools
        access: everyone
        retention: 7 days
        inputs: {kinds: [file, fax]}
        steps:
          - name: count
            command: "wc -l {input}"
          - name: nothing
          - task: Unzip
        """
    ) == [
        f"{LABEL}, line 1, column 7: name: must be 1-64 lower-case letters, digits, '_' or '-', "
        "starting with a letter or digit",
        f"{LABEL}, line 2, column 9: access: must be one of: anyone, signed-in, staff, superuser",
        f"{LABEL}, line 3, column 12: retention: must be a number of seconds or a duration such "
        "as 90m, 12h, 7d or 2w",
        f"{LABEL}, line 4, column 24: inputs.kinds.1: must be an input kind: file, json, text, "
        "url, datafile, run or items",
        f"{LABEL}, line 7, column 14: steps.0.command: must be the argv template as a list of "
        'arguments, e.g. [wc, -l, "{input}"] (never a shell string)',
        f"{LABEL}, line 8, column 5: steps.1: must be a step with exactly one of `command` (a "
        "command-line tool), `task` (a library task) or `python` (Python code: exported, never "
        "imported)",
        f"{LABEL}, line 9, column 11: steps.2.task: must be a task of gristmill's library: "
        "DetectFormat, EvaluatePython, FieldStatistics, JsonToSpreadsheet, SafeUnzip, Sample, "
        "SpreadsheetToJson or ValidateSchema",
    ]


def test_a_python_step_is_refused_naming_the_step() -> None:
    assert problems(
        """
        name: tools
        steps:
          - task: DetectFormat
          - name: shout
            python: mypackage.steps.shout
        """
    ) == [
        f"{LABEL}, line 4, column 5: steps.1: step `shout` is Python code "
        "(mypackage.steps.shout), which a YAML pipeline cannot hold; keep this pipeline in "
        "Python, or replace the step with a command or a library task"
    ]


def test_an_option_a_library_task_does_not_take_is_named_at_its_key() -> None:
    assert problems(
        """
        name: tools
        steps:
          - task: DetectFormat
            acept: [csv]
        """
    ) == [
        f"{LABEL}, line 4, column 5: steps.0.acept: is not an option of DetectFormat (its "
        "options: accept, items, name, network, source, title)"
    ]


def test_a_definition_mistake_names_the_steps_line() -> None:
    assert problems(
        """
        name: tools
        steps:
          - task: DetectFormat
          - name: count
            command: [wc, "-l{input}"]
        """
    ) == [
        f"{LABEL}, line 4, column 5: steps.1: argument '-l{{input}}' puts {{input}} inside other "
        "text; user values fill whole arguments, so give the option and the value as two "
        "arguments: ['--option', '{input}']"
    ]


def test_a_step_that_reads_an_unknown_parameter_is_refused() -> None:
    assert problems(
        """
        name: tools
        steps:
          - name: greet
            command: [echo, "{params.who}"]
        """
    ) == [
        f"{LABEL}, line 3, column 5: steps.0: uses parameter 'who', which the parameter model "
        "does not define (known: none)"
    ]


def test_a_parameter_the_format_cannot_express_is_named() -> None:
    assert problems(
        """
        name: tools
        params:
          properties:
            limits: {type: object}
        steps: [{task: DetectFormat}]
        """
    ) == [
        f"{LABEL}, line 4, column 13: params.properties.limits: type 'object' is not supported;"
        " a parameter is text (string), a whole number (integer), a number, a boolean, a list "
        "(array) of these, or a choice (enum)"
    ]


def test_a_key_given_twice_is_refused() -> None:
    assert problems("name: a\nname: b\nsteps: [{task: DetectFormat}]\n") == [
        f"{LABEL}, line 2, column 1: name: is given twice"
    ]


def test_anchors_and_aliases_are_refused() -> None:
    assert problems(
        """
        name: tools
        steps:
          - &format {task: DetectFormat}
          - *format
        """
    ) == [
        f"{LABEL}, line 4, column 5: anchors and aliases (&name, *name) are not supported; "
        "write the value out"
    ]


def test_python_tags_are_not_read() -> None:
    assert problems("name: !!python/name:os.system\nsteps: []\n") == [
        f"{LABEL}, line 1, column 7: not valid YAML: could not determine a constructor for "
        "the tag 'tag:yaml.org,2002:python/name:os.system'"
    ]


def test_broken_yaml_names_the_line() -> None:
    assert problems("name: tools\nsteps: [\n") == [
        f"{LABEL}, line 3, column 1: not valid YAML: expected the node content, but found "
        "'<stream end>'"
    ]


def test_an_empty_file_holds_no_pipeline() -> None:
    assert problems("# nothing yet\n") == [f"{LABEL}: holds no pipeline (the file is empty)"]


def test_a_mistake_in_a_later_document_names_its_own_line() -> None:
    assert problems(
        """
        name: one
        steps: [{task: DetectFormat}]
        ---
        name: two
        steps: [{task: DetectFormat, source: 3}]
        """
    ) == [f"{LABEL}, line 5, column 38: steps.0.source: must name an earlier step, or list several"]


def test_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="pipeline file does not exist"):
        load_file(tmp_path / "absent.yaml")


def test_the_shipped_schema_is_a_valid_json_schema_and_the_docs_show_it() -> None:
    schema = pipeline_schema()
    jsonschema.validators.validator_for(schema).check_schema(schema)


def test_the_schema_names_exactly_the_librarys_tasks() -> None:
    named = pipeline_schema()["$defs"]["library_step"]["properties"]["task"]["enum"]
    assert named == sorted(gristmill.library.__all__)


def test_a_key_that_is_not_text_is_refused() -> None:
    assert problems("name: tools\nsteps: [{task: DetectFormat}]\nenv:\n  on: 1\n") == [
        f"{LABEL}, line 4, column 3: env: keys must be plain text (quote them)"
    ]


def test_a_step_that_is_not_a_mapping_gets_one_message() -> None:
    assert problems("name: tools\nsteps:\n  - DetectFormat\n") == [
        f"{LABEL}, line 3, column 5: steps.0: must be a step with exactly one of `command` (a "
        "command-line tool), `task` (a library task) or `python` (Python code: exported, never "
        "imported)"
    ]


def test_the_schema_takes_every_option_of_a_command_but_python_predicates() -> None:
    fields = set(pipeline_schema()["$defs"]["command_step"]["properties"])
    options = set(inspect.signature(Command.__init__).parameters) - {"self"}
    assert fields == options - {"argv", "applicable"} | {"command"}


def test_the_schema_takes_every_pipeline_option_a_file_can_hold() -> None:
    fields = set(pipeline_schema()["properties"])
    options = set(inspect.signature(Pipeline.__init__).parameters) - {"self"}
    assert fields == options - {"validators", "webhook_secret"}
