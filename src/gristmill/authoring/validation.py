"""Checks run on a submission before anything is queued: parameters, inputs, validators.

Each check raises :class:`~gristmill.errors.SubmissionError` with messages keyed by field, so a
form or an API client can show every problem next to the field it concerns.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from gristmill.authoring.commands import Command
from gristmill.authoring.context import InputFile
from gristmill.authoring.inputs import human_size
from gristmill.authoring.pipelines import Pipeline
from gristmill.authoring.sniffing import (
    DESCRIPTIONS,
    MEDIA_TYPES,
    canonical,
    describe,
    from_media_type,
    matches,
    sniff,
)
from gristmill.errors import InternalErrorRef, SubmissionError, TaskError

logger = logging.getLogger("gristmill.authoring.validation")


MAX_TEXT_LENGTH = 10_000
"""The longest text a parameter takes unless its field sets its own ``max_length``."""


def validate_params(
    pipeline: Pipeline, raw: Mapping[str, Any] | None, *, strict: bool = False
) -> BaseModel:
    """Return the pipeline's parameter model built from ``raw``.

    Unknown names and invalid values raise :class:`SubmissionError` with one entry per field,
    keyed ``params.<name>``, every problem of the submission at once; so does a value a command
    step could not pass as an argument (one starting with ``-``, a list, or none; see
    :meth:`Command.refused_params`), and text longer than :data:`MAX_TEXT_LENGTH` in a field
    that sets no ``max_length`` of its own.

    ``strict`` is for values that arrived as JSON (the API): each must already be of its
    field's JSON type, so ``"5"`` is no integer and ``1`` no boolean. Otherwise pydantic
    converts what it can (``"5"`` to 5), as for the command line's ``NAME=TEXT``.
    """
    raw = dict(raw or {})
    errors = _screened(pipeline, raw)
    # Every problem is reported at once: the values not refused above are still checked by
    # the model, so an unknown name does not hide the error of a value beside it.
    checked = {name: value for name, value in raw.items() if f"params.{name}" not in errors}
    try:
        if strict:
            model = pipeline.params.model_validate_json(json.dumps(checked), strict=True)
        else:
            model = pipeline.params.model_validate(checked)
    except ValidationError as error:
        for problem in error.errors():
            field = ".".join(str(part) for part in problem["loc"]) or "__all__"
            # A field refused above is left out of ``checked``; "Field required" would be noise.
            if problem["loc"] and f"params.{problem['loc'][0]}" in errors:
                continue
            errors.setdefault(f"params.{field}", []).append(problem["msg"])
        raise SubmissionError(errors) from None
    # A value a command step cannot take as an argument would only fail the run later.
    for step in pipeline.steps:
        if isinstance(step, Command):
            for name, message in step.refused_params(model).items():
                errors.setdefault(f"params.{name}", []).append(message)
    if errors:
        raise SubmissionError(errors)
    return model


def _screened(pipeline: Pipeline, raw: Mapping[str, Any]) -> dict[str, list[str]]:
    # The refusals that need no model: unknown names, NUL characters, overlong text.
    known = pipeline.params.model_fields
    errors: dict[str, list[str]] = {}
    for name, value in raw.items():
        if name not in known:
            choices = ", ".join(sorted(known)) or "none"
            errors.setdefault(f"params.{name}", []).append(
                f"unknown parameter {name!r} (this pipeline takes: {choices})"
            )
        if _has_nul(value):
            errors.setdefault(f"params.{name}", []).append("must not contain NUL characters")
        elif name in known and _longest_text(value) > _text_limit(known[name]):
            errors.setdefault(f"params.{name}", []).append(
                f"is longer than {_text_limit(known[name]):,} characters"
            )
    return errors


def check_input_count(pipeline: Pipeline, count: int) -> None:
    """Refuse too few or too many inputs."""
    spec = pipeline.inputs
    if count < spec.min_count:
        need = "an input" if spec.min_count == 1 else f"at least {spec.min_count} inputs"
        raise SubmissionError({"inputs": [f"this pipeline needs {need}; {count} given"]})
    if count > spec.max_count:
        most = "one input" if spec.max_count == 1 else f"at most {spec.max_count} inputs"
        raise SubmissionError({"inputs": [f"this pipeline takes {most}; {count} given"]})


def check_input_kind(pipeline: Pipeline, kind: str, name: str) -> None:
    """Refuse an input kind or file extension the pipeline does not accept."""
    spec = pipeline.inputs
    if kind not in spec.kinds:
        offered = ", ".join(str(k) for k in spec.kinds)
        raise SubmissionError(
            {"inputs": [f"{name}: this pipeline does not take {kind} inputs (it takes: {offered})"]}
        )
    if spec.extensions is not None and kind == "file":
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if extension not in spec.extensions:
            wanted = ", ".join(f".{ext}" for ext in spec.extensions)
            raise SubmissionError(
                {"inputs": [f"{name}: files of this type are not accepted (accepted: {wanted})"]}
            )


CONTENT_CHECKED_KINDS = ("file", "url", "datafile")
"""The input kinds whose content is checked against the accepted types."""


def check_input_content(
    pipeline: Pipeline, kind: str, name: str, path: Path, media_type: str | None = None
) -> tuple[str, str | None]:
    """Check a stored input's content against the pipeline's accepted ``extensions``, and
    return its name and media type. A URL or data file whose name has no extension, or (for a
    URL) one that is not accepted, is given the extension of its content. (An upload's name
    must carry an accepted extension: :func:`check_input_kind`.)

    The content decides (:mod:`.sniffing`); ``media_type`` (a URL's ``Content-Type``) only
    names the type when the content cannot tell. A file whose content is not what its name
    says, or not a type the pipeline accepts, raises :class:`SubmissionError` naming the
    input, what was expected and what was found.
    """
    if kind not in CONTENT_CHECKED_KINDS:
        return name, media_type
    found = sniff(path)
    said = from_media_type(media_type)
    if said is not None and (found is None or found == "txt") and matches(said, found):
        found = said  # e.g. one-column CSV served as text/csv
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        stem, extension = name, ""
    extension = extension.lower()
    accepted = pipeline.inputs.extensions
    if accepted is None:
        # Nothing to check; a URL's name without an extension is given its content's.
        if kind == "url" and not extension and found is not None:
            return f"{stem}.{found}", MEDIA_TYPES[found]
        return name, media_type
    if extension in accepted:
        if matches(extension, found):
            return name, media_type
        if kind != "url":
            raise SubmissionError(
                {
                    "inputs": [
                        f"{name}: expected {describe(canonical(extension))} as its name says, "
                        f"but the content is {describe(found)}"
                    ]
                }
            )
    # No extension, or a URL or data file whose name says nothing usable: the content names
    # the type, and the input is given that type's extension.
    fitting = [ext for ext in accepted if found is not None and matches(ext, found)]
    if fitting:
        chosen = found if found in fitting else fitting[0]
        return f"{stem}.{chosen}", MEDIA_TYPES.get(canonical(chosen), media_type)
    unjudged = [ext for ext in accepted if canonical(ext) not in DESCRIPTIONS]
    if found is None and unjudged:
        # A type gristmill cannot tell by content (e.g. .parquet): the name has the say.
        if extension or len(unjudged) != 1:
            return name, media_type
        return f"{stem}.{unjudged[0]}", media_type
    wanted = ", ".join(f".{ext}" for ext in accepted)
    raise SubmissionError(
        {"inputs": [f"{name}: expected {wanted}, but the content is {describe(found)}"]}
    )


def size_limit_message(pipeline: Pipeline, name: str) -> str:
    """The message for an input over the pipeline's size limit."""
    limit = human_size(pipeline.inputs.max_size)
    return f"{name}: the file is larger than this pipeline's limit of {limit}"


def run_validators(pipeline: Pipeline, inputs: Sequence[InputFile]) -> None:
    """Run each validator on each input; any refusal raises :class:`SubmissionError`.

    A validator returns ``True``/``None`` to accept, ``False`` to refuse with a generic message,
    a string to refuse with that message, or raises :class:`TaskError` with a message.
    """
    problems: list[str] = []
    for validator in pipeline.validators:
        label = getattr(validator, "__name__", "validator").replace("_", " ")
        for item in inputs:
            try:
                verdict = validator(item)
            except TaskError as error:
                problems.append(f"{item.name}: {error.message}")
                continue
            except Exception as error:
                where = f"validator {label} on {item.name}"
                ref = InternalErrorRef.log(error, where, logger).reference
                problems.append(
                    f"{item.name}: the check '{label}' failed with an internal error "
                    f"(reference {ref})"
                )
                continue
            if verdict is False:
                problems.append(f"{item.name}: failed the check '{label}'")
            elif isinstance(verdict, str):
                problems.append(f"{item.name}: {verdict}")
    if problems:
        raise SubmissionError({"inputs": problems})


def params_from_text(schema: Mapping[str, Any], texts: Mapping[str, str]) -> dict[str, Any]:
    """Parameters given as text (``NAME=TEXT`` on a command line) as the JSON values the
    parameter JSON Schema ``schema`` asks for: a text that is JSON of a type the parameter
    takes becomes that value (``5`` for an integer, ``true`` for a boolean, ``[1, 2]`` for a
    list); any other text stays text, for the parameter's own check to judge."""
    properties = schema.get("properties", {})
    definitions = schema.get("$defs", {})
    values: dict[str, Any] = {}
    for name, text in texts.items():
        values[name] = text
        try:
            value = json.loads(text)
        except ValueError:
            continue
        types = _json_types(properties.get(name, {}), definitions)
        if types is None or _json_type(value) in types:
            values[name] = value
    return values


def _json_types(prop: Mapping[str, Any], definitions: Mapping[str, Any]) -> set[str] | None:
    """The JSON types a property's schema allows; ``None`` if it does not say."""
    ref = prop.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return _json_types(definitions.get(ref.rsplit("/", 1)[-1], {}), definitions)
    if "type" in prop:
        kinds = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
        return {*kinds, "integer"} if "number" in kinds else set(kinds)
    if "enum" in prop:
        return {_json_type(value) for value in prop["enum"]}
    alternatives = prop.get("anyOf") or prop.get("oneOf") or prop.get("allOf")
    if not alternatives:
        return None
    allowed: set[str] = set()
    for alternative in alternatives:
        options = _json_types(alternative, definitions)
        if options is None:
            return None
        allowed |= options
    return allowed


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    names = {float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), "null")


def _text_limit(field: FieldInfo) -> int:
    # A max_length of a text field limits its text; of a list field, its number of items.
    annotation = field.annotation
    optional_text = get_origin(annotation) in (Union, UnionType) and set(get_args(annotation)) == {
        str,
        type(None),
    }
    if annotation is not str and not optional_text:
        return MAX_TEXT_LENGTH
    declared = [getattr(rule, "max_length", None) for rule in field.metadata]
    return max((limit for limit in declared if limit is not None), default=MAX_TEXT_LENGTH)


def _longest_text(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return max((_longest_text(item) for item in [*value, *value.values()]), default=0)
    if isinstance(value, list | tuple):
        return max((_longest_text(item) for item in value), default=0)
    return 0


def _has_nul(value: Any) -> bool:
    # Databases refuse NUL in text (PostgreSQL), and no parameter needs one.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False
