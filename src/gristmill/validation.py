"""Checks run on a submission before anything is queued: parameters, inputs, validators.

Each check raises :class:`~gristmill.errors.SubmissionError` with messages keyed by field, so a
form or an API client can show every problem next to the field it concerns.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from gristmill.commands import Command
from gristmill.context import InputFile
from gristmill.errors import SubmissionError, TaskError
from gristmill.inputs import human_size
from gristmill.pipelines import Pipeline

logger = logging.getLogger("gristmill.validation")


def validate_params(pipeline: Pipeline, raw: Mapping[str, Any] | None) -> BaseModel:
    """Return the pipeline's parameter model built from ``raw``.

    Unknown names and invalid values raise :class:`SubmissionError` with one entry per field,
    keyed ``params.<name>``; so does a value a command step could not pass as an argument
    (one starting with ``-``, a list, or none; see :meth:`Command.refused_params`).
    """
    raw = dict(raw or {})
    known = pipeline.params.model_fields
    errors: dict[str, list[str]] = {}
    for name in raw:
        if name not in known:
            choices = ", ".join(sorted(known)) or "none"
            errors.setdefault(f"params.{name}", []).append(
                f"unknown parameter {name!r} (this pipeline takes: {choices})"
            )
    for name, value in raw.items():
        if _has_nul(value):
            errors.setdefault(f"params.{name}", []).append("must not contain NUL characters")
    if errors:
        raise SubmissionError(errors)
    try:
        model = pipeline.params.model_validate(raw)
    except ValidationError as error:
        for problem in error.errors():
            field = ".".join(str(part) for part in problem["loc"]) or "__all__"
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
            except Exception:
                ref = uuid.uuid4().hex[:12]
                logger.exception("validator %s failed on %s (reference %s)", label, item.name, ref)
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


def _has_nul(value: Any) -> bool:
    # Databases refuse NUL in text (PostgreSQL), and no parameter needs one.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False
