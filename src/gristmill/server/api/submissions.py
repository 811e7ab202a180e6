"""Reading a run submission from an HTTP request: a JSON body, or a multipart form.

Only the shape of the request is checked here (is the body JSON, are ``params`` an object, is
each input well formed), and what the caller may see: a data file or an earlier run that the
caller may not see is refused here like one that does not exist. Everything about the pipeline
(parameters, input kinds, sizes, counts, validators) is checked by
:func:`gristmill.app.submission.submit`, the one way in. Uploads are handed over as streams, so
gristmill's size limit applies while they are copied.
"""

from __future__ import annotations

from typing import IO, Any, NamedTuple, cast

from django.http import HttpRequest
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from gristmill.app.service import Service, default_service
from gristmill.app.submission import MAX_BULK_ENTRIES, ancestor_id
from gristmill.authoring import jsonload
from gristmill.authoring.inputs import InputSource, JsonInput, RunItems, TextInput, Upload
from gristmill.errors import NotFoundError, SignInRequiredError, SubmissionError
from gristmill.server import datafiles, notifications
from gristmill.server.access import Caller, visible_run
from gristmill.server.api.auth import caller_of
from gristmill.server.api.bodies import JSON, MULTIPART, require_media_type, unnamed_file
from gristmill.server.sources import run_input, url_input

FILES_FIELD = "files"
PARAMS_FIELD = "params"
URL_FIELD = "url"
DATAFILE_FIELD = "datafile"
RUN_FIELD = "run"
ANCESTOR_FIELD = "ancestor"
NOTIFY_EMAIL_FIELD = "notify_email"
WEBHOOK_FIELD = "webhook_url"
REFERENCE_FIELDS = (URL_FIELD, DATAFILE_FIELD, RUN_FIELD)
"""Form fields naming inputs (repeatable): URLs, data file ids, earlier runs' ids."""


class InlineInput(BaseModel):
    """One input given inline in a JSON submission."""

    model_config = ConfigDict(extra="allow")  # a stray field gets a message of our own
    kind: str = Field(
        description="json, text, url, datafile, run or items (files are uploaded as multipart)"
    )
    value: Any = Field(
        None, description="For kind json: the JSON value; for kind items: the value to match."
    )
    text: str | None = Field(None, description="For kind text: the text.")
    name: str | None = Field(
        None, description="For kinds json and text: a file name (input.json/.txt)."
    )
    url: str | None = Field(None, description="For kind url: the http(s) URL to fetch.")
    id: str | None = Field(None, description="For kind datafile: the data file's id.")
    run: str | None = Field(
        None,
        description="For kind run: the id of an earlier run, whose outputs become inputs; for "
        "kind items: the earlier run whose items to take.",
    )
    step: str | None = Field(
        None,
        description="For kind run: only this step's outputs; for kind items: the map step whose "
        "items to take (may be left out if the run has one).",
    )
    where: str | None = Field(
        None, description='For kind items: a JSON path, e.g. "$.buyer.id", equal to value.'
    )
    finding: str | None = Field(
        None, description="For kind items: take the items with a finding of this kind."
    )


class SubmitRequest(BaseModel):
    """A JSON submission: parameters, inline inputs and an ancestor."""

    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(default_factory=dict, description="The run's parameters.")
    inputs: list[InlineInput] = Field(default_factory=list)
    ancestor: str | None = Field(
        None,
        description="An earlier, succeeded run to compare with: its id or its address.",
    )
    notify_email: bool | None = Field(
        None,
        description="E-mail the submitter when the run ends (default: their own setting).",
    )
    webhook_url: str | None = Field(
        None, description="An http(s) URL to POST a signed JSON message to when the run ends."
    )


class Submission(NamedTuple):
    """What a request submits: inputs, parameters, the ancestor's id if one was named, and
    the notification wishes (``notify_email``, ``webhook_url``; see
    :mod:`gristmill.server.notifications`)."""

    inputs: list[InputSource]
    params: dict[str, Any]
    ancestor: str | None = None
    notify_email: bool | None = None
    webhook_url: str | None = None

    @property
    def wishes(self) -> notifications.Wishes:
        """The notifications it asks for, to check and record with the run."""
        return notifications.Wishes(self.notify_email, self.webhook_url)


_FIELDS_OF_KIND = {
    "json": {"kind", "value", "name"},
    "text": {"kind", "text", "name"},
    "url": {"kind", "url"},
    "datafile": {"kind", "id"},
    "run": {"kind", "run", "step"},
    "items": {"kind", "run", "step", "where", "value", "finding"},
}
_REQUIRED_OF_KIND = {
    "json": "value",
    "text": "text",
    "url": "url",
    "datafile": "id",
    "run": "run",
    "items": "run",
}
_KINDS = "json, text, url, datafile, run or items"
_MESSAGES = {
    ("params", "dict_type"): "must be a JSON object",
    ("inputs", "list_type"): "must be a list of inputs",
    ("input", "model_type"): "must be a JSON object with a 'kind'",
    ("kind", "missing"): f"is required ({_KINDS})",
}
_FORM_FIELDS = (
    "'files', 'url', 'datafile', 'run', 'params', 'ancestor', 'notify_email' and 'webhook_url'"
)
_JSON_FIELDS = "'params', 'inputs', 'ancestor', 'notify_email' and 'webhook_url'"
_YES, _NO = ("true", "1", "on", "yes"), ("false", "0", "off", "no", "")
UNNAMED_FILE = 'each file needs a file name (filename="..." in its part\'s Content-Disposition)'


class _Reader:
    """Turns the names of inputs into inputs, for one caller."""

    def __init__(self, caller: Caller, service: Service, problems: dict[str, list[str]]):
        self.caller = caller
        self.service = service
        self.problems = problems

    def url(self, text: str, where: str) -> InputSource | None:
        try:
            return url_input(text)
        except ValueError as error:
            self.problems.setdefault(where, []).append(str(error))
        return None

    def datafile(self, file_id: str, where: str) -> InputSource | None:
        if not self.caller.signed_in:
            raise SignInRequiredError("sign in to use data files")
        try:
            return datafiles.as_input(self.caller, file_id, service=self.service)
        except NotFoundError as error:
            self.problems.setdefault(where, []).append(str(error))
        return None

    def ancestor(self, text: str | None, where: str) -> str | None:
        """The id of the run ``text`` names, if the caller may see it (a run it may not see
        is refused as one that does not exist)."""
        if text is None or not text.strip():
            return None
        try:
            run_id = ancestor_id(text)
            visible_run(self.caller, run_id, self.service)
        except SubmissionError as error:
            self.problems.setdefault(where, []).extend(error.errors["ancestor"])
            return None
        except NotFoundError as error:
            self.problems.setdefault(where, []).append(str(error))
            return None
        return run_id

    def run(self, run_id: str, where: str, step: str | None = None) -> InputSource | None:
        try:
            return run_input(self.caller, run_id, self.service, step)
        except NotFoundError as error:
            self.problems.setdefault(where, []).append(str(error))
        return None

    def items(self, item: InlineInput, given: set[str], where: str) -> InputSource | None:
        """An items input (a filtered run), its filter checked field by field, if the caller
        may see its run (a run it may not see is refused as one that does not exist)."""
        from gristmill.authoring.filters import parse_path

        if ("where" in given) == ("finding" in given):
            self.problems[where] = ["give either 'where' and 'value', or 'finding'"]
            return None
        if "where" in given:
            if "value" not in given:
                self.problems[f"{where}.value"] = ["is required with 'where'"]
                return None
            try:
                parse_path(item.where or "")
            except ValueError as error:
                self.problems[f"{where}.where"] = [str(error)]
                return None
        elif not item.finding:
            self.problems[f"{where}.finding"] = ["must be a finding kind"]
            return None
        try:
            status = visible_run(self.caller, str(item.run), self.service)
        except NotFoundError as error:
            self.problems[f"{where}.run"] = [str(error)]
            return None
        return RunItems(
            status.id,
            item.step,
            where=item.where if "where" in given else None,
            value=item.value,
            finding=item.finding if "finding" in given else None,
        )


def read_submission(
    request: HttpRequest, *, caller: Caller | None = None, service: Service | None = None
) -> Submission:
    """The inputs, parameters, ancestor and notification wishes a request submits for
    ``caller`` (default: the request's);
    :class:`~gristmill.errors.SubmissionError` (400) if it is malformed or names a data file or
    run that ``caller`` may not see, and :class:`SignInRequiredError` for data files named by
    an anonymous caller.

    ``multipart/form-data`` carries files in ``files``, URLs in ``url``, data file ids in
    ``datafile`` and earlier runs' ids in ``run`` (each repeatable, the inputs in that order),
    the parameters as a JSON object in ``params``, the ancestor in ``ancestor``, and
    ``notify_email`` (``true``/``false``) and ``webhook_url`` once each; ``application/json`` a
    :class:`SubmitRequest`. A body of any other type is refused (415, see
    :mod:`~gristmill.server.api.bodies`); no body at all submits no inputs and default
    parameters.
    """
    caller = caller_of(request) if caller is None else caller
    service = default_service() if service is None else service
    if require_media_type(request, JSON, MULTIPART) == MULTIPART:
        return _read_form(request, caller, service)
    return _read_json(request, caller, service)


def _read_form(request: HttpRequest, caller: Caller, service: Service) -> Submission:
    files, fields = request.FILES, request.POST
    problems: dict[str, list[str]] = {}
    for field in sorted(set(files) - {FILES_FIELD}):
        problems[field] = [f"upload files in the field '{FILES_FIELD}'"]
    if unnamed_file(fields, FILES_FIELD):
        problems[FILES_FIELD] = [UNNAMED_FILE]
    known = {
        FILES_FIELD,
        PARAMS_FIELD,
        ANCESTOR_FIELD,
        *REFERENCE_FIELDS,
        NOTIFY_EMAIL_FIELD,
        WEBHOOK_FIELD,
        "csrfmiddlewaretoken",
    }
    for field in sorted(set(fields) - known):
        problems[field] = [f"unknown field (a submission has {_FORM_FIELDS})"]
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
    ancestors = fields.getlist(ANCESTOR_FIELD)
    if len(ancestors) > 1:
        problems[ANCESTOR_FIELD] = ["name one ancestor run"]
    wishes = _form_wishes(fields, problems)
    if problems:
        raise SubmissionError(problems)
    inputs: list[InputSource] = [
        Upload(
            name=uploaded.name or "upload",
            stream=cast(IO[bytes], uploaded.file or uploaded),
            media_type=uploaded.content_type,
        )
        for uploaded in files.getlist(FILES_FIELD)
    ]
    reader = _Reader(caller, service, problems)
    named = [
        *(reader.url(text, URL_FIELD) for text in fields.getlist(URL_FIELD)),
        *(reader.datafile(text, DATAFILE_FIELD) for text in fields.getlist(DATAFILE_FIELD)),
        *(reader.run(text, RUN_FIELD) for text in fields.getlist(RUN_FIELD)),
    ]
    ancestor = reader.ancestor(ancestors[0] if ancestors else None, ANCESTOR_FIELD)
    if problems:
        raise SubmissionError(problems)
    inputs.extend(source for source in named if source is not None)
    return Submission(inputs, params, ancestor, wishes.email, wishes.webhook_url)


def _form_wishes(fields: Any, problems: dict[str, list[str]]) -> notifications.Wishes:
    email: bool | None = None
    url: str | None = None
    for field in (NOTIFY_EMAIL_FIELD, WEBHOOK_FIELD):
        if len(fields.getlist(field)) > 1:
            problems[field] = ["give it once"]
    given = fields.get(NOTIFY_EMAIL_FIELD)
    if given is not None:
        answer = given.strip().lower()
        if answer not in _YES + _NO:
            problems[NOTIFY_EMAIL_FIELD] = ["must be true or false"]
        email = answer in _YES
    if fields.get(WEBHOOK_FIELD, "").strip():
        url = fields[WEBHOOK_FIELD]
    return notifications.Wishes(email, url)


def _read_json(request: HttpRequest, caller: Caller, service: Service) -> Submission:
    problems: dict[str, list[str]] = {}
    body = request.body
    data = _parse_json(body, "body", problems) if body.strip() else {}
    if not problems and not isinstance(data, dict):
        problems["body"] = ["the body must be a JSON object with 'params' and 'inputs'"]
    if problems:
        raise SubmissionError(problems)
    try:
        submission = SubmitRequest.model_validate(data)
    except PydanticError as error:
        raise SubmissionError(_pydantic_details(error)) from None
    inputs: list[InputSource] = []
    reader = _Reader(caller, service, problems)
    for position, item in enumerate(submission.inputs):
        source = _inline_input(item, f"inputs.{position}", reader)
        if source is not None:
            inputs.append(source)
    ancestor = reader.ancestor(submission.ancestor, ANCESTOR_FIELD)
    if problems:
        raise SubmissionError(problems)
    return Submission(
        inputs, submission.params, ancestor, submission.notify_email, submission.webhook_url
    )


class BulkRequest(BaseModel):
    """A bulk submission: many runs of one pipeline, each given as a JSON submission."""

    model_config = ConfigDict(extra="forbid")
    entries: list[SubmitRequest] = Field(
        description=f"The runs to submit, at most {MAX_BULK_ENTRIES}; all or none are stored."
    )


def read_bulk(request: HttpRequest, *, caller: Caller, service: Service) -> list[Submission]:
    """The inputs, parameters, ancestor and notification wishes of each entry of a bulk
    submission (a JSON :class:`BulkRequest`), for ``caller``;
    :class:`~gristmill.errors.SubmissionError` (400) naming ``entries.<index>.<field>`` if any
    entry is malformed or names what ``caller`` may not see, or if there are more than
    :data:`MAX_BULK_ENTRIES` entries. The wishes are checked by the caller of this function
    (:func:`gristmill.server.notifications.check_wishes`)."""
    require_media_type(request, JSON)
    problems: dict[str, list[str]] = {}
    body = request.body
    data = _parse_json(body, "body", problems) if body.strip() else None
    if not problems and not (isinstance(data, dict) and isinstance(data.get("entries"), list)):
        problems["body"] = ["the body must be a JSON object with a list of 'entries'"]
    if problems:
        raise SubmissionError(problems)
    assert isinstance(data, dict)
    count = len(data["entries"])
    if not 0 < count <= MAX_BULK_ENTRIES:
        given = "none given" if not count else f"{count} given"
        problems["entries"] = [f"give 1 to {MAX_BULK_ENTRIES} entries; {given}"]
        raise SubmissionError(problems)
    for index, entry in enumerate(data["entries"]):
        if not isinstance(entry, dict):
            problems[f"entries.{index}"] = ["must be a JSON object with 'params' and 'inputs'"]
    if problems:
        raise SubmissionError(problems)
    try:
        bulk = BulkRequest.model_validate(data)
    except PydanticError as error:
        raise SubmissionError(_pydantic_details(error, "a bulk submission has 'entries'")) from None
    reader = _Reader(caller, service, problems)
    entries = []
    for index, entry in enumerate(bulk.entries):
        inputs: list[InputSource] = []
        for position, item in enumerate(entry.inputs):
            source = _inline_input(item, f"entries.{index}.inputs.{position}", reader)
            if source is not None:
                inputs.append(source)
        ancestor = reader.ancestor(entry.ancestor, f"entries.{index}.ancestor")
        entries.append(
            Submission(inputs, entry.params, ancestor, entry.notify_email, entry.webhook_url)
        )
    if problems:
        raise SubmissionError(problems)
    return entries


def _inline_input(item: InlineInput, where: str, reader: _Reader) -> InputSource | None:
    problems = reader.problems
    kind = item.kind
    if kind == "file":
        problems[f"{where}.kind"] = ["upload files as multipart/form-data, in the field 'files'"]
        return None
    allowed = _FIELDS_OF_KIND.get(kind)
    if allowed is None:
        problems[f"{where}.kind"] = [f"unknown input kind {kind!r} (use {_KINDS})"]
        return None
    given = item.model_fields_set | set(item.model_extra or {})
    for field in sorted(given - allowed):
        problems[f"{where}.{field}"] = [f"is not a field of a {kind} input"]
    required = _REQUIRED_OF_KIND[kind]
    value = getattr(item, required)
    if required not in given or (value is None and kind != "json"):
        problems[f"{where}.{required}"] = [f"is required for a {kind} input"]
    if problems:
        return None
    if kind == "json":
        return JsonInput(value, name=item.name or "input.json")
    if kind == "text":
        return TextInput(value, name=item.name or "input.txt")
    if kind == "url":
        return reader.url(value, f"{where}.url")
    if kind == "datafile":
        return reader.datafile(value, f"{where}.id")
    if kind == "items":
        return reader.items(item, given, where)
    return reader.run(value, f"{where}.run", item.step)


def _parse_json(data: bytes, field: str, problems: dict[str, list[str]]) -> Any:
    try:
        return jsonload.loads(data)
    except jsonload.JsonError as error:
        problems[field] = [f"the body {error.detail}" if field == "body" else error.detail]
    return None


def _pydantic_details(
    error: PydanticError, fields: str = f"a submission has {_JSON_FIELDS}"
) -> dict[str, list[str]]:
    details: dict[str, list[str]] = {}
    for problem in error.errors(include_url=False):
        loc = problem["loc"]
        field = ".".join(str(part) for part in loc) or "body"
        last = "input" if loc and isinstance(loc[-1], int) else str(loc[-1]) if loc else ""
        if problem["type"] == "extra_forbidden" and len(loc) == 1:
            message = f"unknown field ({fields})"
        elif problem["type"] == "extra_forbidden":
            message = f"unknown field (an entry has {_JSON_FIELDS})"
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
                    URL_FIELD: {
                        "type": "array",
                        "items": {"type": "string", "format": "uri"},
                        "description": "http(s) URLs the server fetches as inputs.",
                    },
                    DATAFILE_FIELD: {
                        "type": "array",
                        "items": {"type": "string", "format": "uuid"},
                        "description": "Ids of the caller's data files to use as inputs.",
                    },
                    RUN_FIELD: {
                        "type": "array",
                        "items": {"type": "string", "format": "uuid"},
                        "description": "Ids of earlier runs whose output files become inputs.",
                    },
                    PARAMS_FIELD: {
                        "type": "string",
                        "description": "The parameters, as a JSON object in text.",
                    },
                    ANCESTOR_FIELD: {
                        "type": "string",
                        "description": "An earlier, succeeded run to compare with: its id or "
                        "its address.",
                    },
                    NOTIFY_EMAIL_FIELD: {
                        "type": "string",
                        "enum": ["true", "false"],
                        "description": "E-mail the submitter when the run ends.",
                    },
                    WEBHOOK_FIELD: {
                        "type": "string",
                        "format": "uri",
                        "description": "A URL to POST a signed message to when the run ends.",
                    },
                },
            }
        },
    },
}
"""The OpenAPI ``requestBody`` of a submission: either form."""

BULK_BODY_DOC: dict[str, Any] = {
    "required": True,
    "content": {"application/json": {"schema": _inline_refs(BulkRequest.model_json_schema())}},
}
"""The OpenAPI ``requestBody`` of a bulk submission."""
