"""Reading a run submission from an HTTP request: a JSON body, or a multipart form.

Only the shape of the request is checked here (is the body JSON, are ``params`` an object, is
each inline input well formed); everything about the pipeline (parameters, input kinds, sizes,
counts, validators) is checked by :func:`gristmill.submission.submit`, the one way in. Uploads
are handed over as streams, so gristmill's size limit applies while they are copied.
"""

from __future__ import annotations

import json
from typing import IO, Any, cast

from django.http import HttpRequest
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from gristmill.inputs import InputSource, JsonInput, TextInput, Upload
from gristmill.server.api.errors import ApiError

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
FILES_FIELD = "files"
PARAMS_FIELD = "params"
PLANNED_KINDS = ("url", "datafile", "run")
"""Input kinds gristmill knows but the API cannot take yet."""


class InlineInput(BaseModel):
    """One input given inline in a JSON submission."""

    model_config = ConfigDict(extra="allow")  # planned kinds will carry fields of their own
    kind: str = Field(description="json or text (file inputs are uploaded as multipart)")
    value: Any = Field(None, description="For kind json: the JSON value.")
    text: str | None = Field(None, description="For kind text: the text.")
    name: str | None = Field(None, description="A file name for the input (input.json/.txt).")


class SubmitRequest(BaseModel):
    """A JSON submission: parameters and inline inputs."""

    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(default_factory=dict, description="The run's parameters.")
    inputs: list[InlineInput] = Field(default_factory=list)


_FIELDS_OF_KIND = {"json": {"kind", "value", "name"}, "text": {"kind", "text", "name"}}
_MESSAGES = {
    ("params", "dict_type"): "must be a JSON object",
    ("inputs", "list_type"): "must be a list of inputs",
    ("input", "model_type"): "must be a JSON object with a 'kind'",
    ("kind", "missing"): "is required (json or text)",
}


def read_submission(request: HttpRequest) -> tuple[list[InputSource], dict[str, Any]]:
    """The inputs and parameters a request submits; :class:`ApiError` (400) if it is malformed.

    ``multipart/form-data`` (or a urlencoded form) carries files in ``files`` and the parameters
    as a JSON object in ``params``; anything else is read as a JSON :class:`SubmitRequest`
    (an empty body submits no inputs and default parameters).
    """
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type in FORM_TYPES:
        return _read_form(request)
    return _read_json(request)


def _read_form(request: HttpRequest) -> tuple[list[InputSource], dict[str, Any]]:
    files, fields = request.FILES, request.POST
    problems: dict[str, list[str]] = {}
    for field in sorted(set(files) - {FILES_FIELD}):
        problems[field] = [f"upload files in the field '{FILES_FIELD}'"]
    for field in sorted(set(fields) - {PARAMS_FIELD, "csrfmiddlewaretoken"}):
        problems[field] = [f"unknown field (a submission has '{FILES_FIELD}' and '{PARAMS_FIELD}')"]
    params: dict[str, Any] = {}
    texts = fields.getlist(PARAMS_FIELD)
    if len(texts) > 1:
        problems[PARAMS_FIELD] = ["give the parameters once, as one JSON object"]
    elif texts and texts[0].strip():
        value = _parse_json(texts[0].encode(), PARAMS_FIELD, problems)
        if isinstance(value, dict):
            params = value
        elif PARAMS_FIELD not in problems:
            problems[PARAMS_FIELD] = ["must be a JSON object"]
    if problems:
        raise ApiError.invalid(problems)
    uploads: list[InputSource] = [
        Upload(
            name=uploaded.name or "upload",
            stream=cast(IO[bytes], uploaded.file or uploaded),
            media_type=uploaded.content_type,
        )
        for uploaded in files.getlist(FILES_FIELD)
    ]
    return uploads, params


def _read_json(request: HttpRequest) -> tuple[list[InputSource], dict[str, Any]]:
    problems: dict[str, list[str]] = {}
    body = request.body
    data = _parse_json(body, "body", problems) if body.strip() else {}
    if not problems and not isinstance(data, dict):
        problems["body"] = ["the body must be a JSON object with 'params' and 'inputs'"]
    if problems:
        raise ApiError.invalid(problems)
    try:
        submission = SubmitRequest.model_validate(data)
    except PydanticError as error:
        raise ApiError.invalid(_pydantic_details(error)) from None
    inputs: list[InputSource] = []
    for position, item in enumerate(submission.inputs):
        source = _inline_input(item, f"inputs.{position}", problems)
        if source is not None:
            inputs.append(source)
    if problems:
        raise ApiError.invalid(problems)
    return inputs, submission.params


def _inline_input(
    item: InlineInput, where: str, problems: dict[str, list[str]]
) -> InputSource | None:
    kind = item.kind
    if kind in PLANNED_KINDS:
        problems[f"{where}.kind"] = [f"{kind} inputs are not supported yet"]
        return None
    if kind == "file":
        problems[f"{where}.kind"] = ["upload files as multipart/form-data, in the field 'files'"]
        return None
    allowed = _FIELDS_OF_KIND.get(kind)
    if allowed is None:
        problems[f"{where}.kind"] = [f"unknown input kind {kind!r} (use json or text)"]
        return None
    given = item.model_fields_set | set(item.model_extra or {})
    for field in sorted(given - allowed):
        problems[f"{where}.{field}"] = [f"is not a field of a {kind} input"]
    if kind == "json":
        if "value" not in given:
            problems[f"{where}.value"] = ["is required for a json input"]
        elif not problems:
            return JsonInput(item.value, name=item.name or "input.json")
    elif item.text is None:
        problems[f"{where}.text"] = ["is required for a text input"]
    elif not problems:
        return TextInput(item.text, name=item.name or "input.txt")
    return None


def _parse_json(data: bytes, field: str, problems: dict[str, list[str]]) -> Any:
    def refuse_constant(name: str) -> None:
        raise ValueError(f"{name} is not allowed in JSON")

    what = "the body is" if field == "body" else "is"
    try:
        return json.loads(data, parse_constant=refuse_constant)
    except RecursionError:
        problems[field] = [f"{what} not valid JSON: it is nested too deeply"]
    except ValueError as error:  # also UnicodeDecodeError
        problems[field] = [f"{what} not valid JSON: {error}"]
    return None


def _pydantic_details(error: PydanticError) -> dict[str, list[str]]:
    details: dict[str, list[str]] = {}
    for problem in error.errors(include_url=False):
        loc = problem["loc"]
        field = ".".join(str(part) for part in loc) or "body"
        last = "input" if loc and isinstance(loc[-1], int) else str(loc[-1]) if loc else ""
        if problem["type"] == "extra_forbidden" and len(loc) == 1:
            message = "unknown field (a submission has 'params' and 'inputs')"
        else:
            message = _MESSAGES.get((last, problem["type"]), problem["msg"])
        details.setdefault(field, []).append(message)
    return details


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(definitions[ref.rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return cast(dict[str, Any], resolve(schema))


REQUEST_BODY_DOC: dict[str, Any] = {
    "required": False,
    "content": {
        "application/json": {"schema": _inline_refs(SubmitRequest.model_json_schema())},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    FILES_FIELD: {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "The input files.",
                    },
                    PARAMS_FIELD: {
                        "type": "string",
                        "description": "The parameters, as a JSON object in text.",
                    },
                },
            }
        },
    },
}
"""The OpenAPI ``requestBody`` of a submission: either form."""
