"""The submission form of a pipeline, made from what it accepts and its parameter model.

The form only turns the request into Python values (a number field gives a number, a run's
address the run's outputs, a chosen data file that file), looking up only what the caller may
see; every check that decides whether a run is accepted stays in
:func:`gristmill.app.submission.submit`, the one way in, and its refusals are shown next to the
fields they concern (:meth:`SubmissionForm.show_refusal`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django import forms
from django.forms import BoundField
from django.template.defaultfilters import date as format_date
from django.template.defaultfilters import filesizeformat
from pydantic import BaseModel

from gristmill.app.service import Service, default_service
from gristmill.app.submission import ancestor_id
from gristmill.authoring import jsonload
from gristmill.authoring.inputs import InputKind, InputSource, JsonInput, TextInput, Upload
from gristmill.authoring.pipelines import PREVIOUS, Pipeline
from gristmill.errors import NotFoundError, SubmissionError
from gristmill.server import datafiles
from gristmill.server.access import ANONYMOUS, Caller, visible_run
from gristmill.server.sources import run_id_from, run_input, url_input

FILES = "files"
TEXT = "text"
URL = "url"
DATAFILE = "datafile"
RUN = "run"
INPUT_FIELDS = (FILES, TEXT, URL, DATAFILE, RUN)
"""The form's input fields, in the order their inputs are submitted."""
ANCESTOR = "ancestor"
_RESERVED = frozenset({*INPUT_FIELDS, ANCESTOR, "csrfmiddlewaretoken"})
DATAFILE_CHOICES = 200
"""At most this many of the user's newest data files are offered."""
_WHEN = "j M Y, H:i"


class FilesInput(forms.FileInput):
    """A file input that hands over every file sent under its name, whether or not it offers
    choosing several (so that gristmill, not the widget, says how many a pipeline takes)."""

    def __init__(self, *, multiple: bool, accept: str | None) -> None:
        self.allow_multiple_selected = multiple
        super().__init__({"accept": accept} if accept else None)

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        if hasattr(files, "getlist"):
            return files.getlist(name)
        value = files.get(name)
        return [] if value is None else list(value) if isinstance(value, list) else [value]


class JsonField(forms.CharField):
    """A parameter with no form control of its own (a list, an object), typed as JSON."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value)

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text:
            return None
        parsed, problem = parse_json(text)
        if problem:
            raise forms.ValidationError(problem)
        if _has_null_character(parsed):  # as CharField refuses them: databases cannot store them
            raise forms.ValidationError("Null characters are not allowed.")
        return parsed


def _has_null_character(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


# The paste box's label and help by what the pipeline takes: (JSON?, text?).
_PASTE_BOX = {
    (True, False): ("Or paste JSON", "It must be valid JSON."),
    (False, True): ("Or paste text", ""),
    (True, True): (
        "Or paste JSON or text",
        "Valid JSON is submitted as JSON (input.json), anything else as text (input.txt).",
    ),
}


def parse_json(text: str) -> tuple[Any, str | None]:
    """The JSON value in ``text``, or ``None`` and a message saying why it cannot be read."""
    try:
        return jsonload.loads(text), None
    except jsonload.JsonError as error:
        return None, f"this {error.detail}"


def _resolve(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """The schema of one property with ``$ref`` and ``X | None`` unwrapped (the property's
    own title, default and description kept)."""
    resolved = {key: value for key, value in prop.items() if key not in ("$ref", "anyOf", "allOf")}
    targets = [prop] if "$ref" in prop else list(prop.get("allOf", []))
    others = [p for p in prop.get("anyOf", []) if p.get("type") != "null"]
    if len(others) == 1:
        targets.append(others[0])
    for target in targets:
        ref = target.get("$ref", "")
        base = defs.get(ref.rsplit("/", 1)[-1], {}) if ref.startswith("#/$defs/") else target
        for key, value in base.items():
            if key not in ("title", "description", "$ref"):
                resolved.setdefault(key, value)
    return resolved


def param_field(schema: Mapping[str, Any], label: str, required: bool) -> forms.Field:
    """The form field of one parameter, from its JSON Schema."""
    options: dict[str, Any] = {
        "label": label,
        "help_text": schema.get("description", ""),
        "initial": schema.get("default"),
        "required": required,
    }
    kind = schema.get("type")
    if "enum" in schema:
        values = {str(value): value for value in schema["enum"]}
        choices = [(text, text) for text in values]
        if not required and options["initial"] is None:
            choices.insert(0, ("", "(default)"))
        return forms.TypedChoiceField(
            choices=choices, coerce=values.__getitem__, empty_value=None, **options
        )
    if kind == "integer":
        return forms.IntegerField(**options)
    if kind == "number":
        return forms.FloatField(**options)
    if kind == "boolean":
        return forms.BooleanField(**{**options, "required": False})
    if kind == "string":
        return forms.CharField(**options)
    options["help_text"] = " ".join(filter(None, [options["help_text"], "(as JSON)"]))
    return JsonField(**options)


def param_fields(model: type[BaseModel]) -> dict[str, forms.Field]:
    """One form field per parameter of ``model``, in the model's order."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    fields = {}
    for name, prop in schema.get("properties", {}).items():
        label = prop.get("title") or name.replace("_", " ").capitalize()
        fields[name] = param_field(_resolve(prop, defs), label, name in required)
    return fields


def describe_inputs(pipeline: Pipeline) -> str:
    """What the pipeline accepts, in one sentence for the form."""
    spec = pipeline.inputs
    parts = []
    if spec.extensions is not None:
        parts.append("accepted: " + ", ".join(f".{ext}" for ext in spec.extensions))
    parts.append(f"up to {filesizeformat(spec.max_size)} each")
    if spec.max_count > 1:
        parts.append(f"at most {spec.max_count}")
    if spec.min_count == 0:
        parts.append("optional")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


class SubmissionForm(forms.Form):
    """The inputs and parameters of a new run of ``pipeline``, submitted by ``caller``.

    Besides files and pasted text, it offers, for pipelines that take them, a URL, the
    caller's data files (only when signed in) and an earlier run that the caller may see (by
    its id or the address of its page). ``service`` (default: the configured one) is where
    earlier runs and data files are looked up.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *args: Any,
        caller: Caller = ANONYMOUS,
        service: Service | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.pipeline = pipeline
        self.caller = caller
        self._service = service
        kinds = set(pipeline.inputs.kinds)
        if InputKind.FILE in kinds:
            extensions = pipeline.inputs.extensions
            accept = ",".join(f".{ext}" for ext in extensions) if extensions is not None else None
            widget = FilesInput(multiple=pipeline.inputs.max_count > 1, accept=accept)
            self.fields[FILES] = forms.Field(
                label="Files" if pipeline.inputs.max_count > 1 else "File",
                required=False,
                widget=widget,
                help_text=describe_inputs(pipeline),
            )
        self.takes_text = InputKind.TEXT in kinds
        self.takes_json = InputKind.JSON in kinds
        self.pasted_json: Any = None
        self.pasted_is_json = False
        if self.takes_text or self.takes_json:
            label, help_text = _PASTE_BOX[self.takes_json, self.takes_text]
            self.fields[TEXT] = forms.CharField(
                label=label,
                required=False,
                strip=False,
                widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
                help_text=help_text,
            )
        if InputKind.URL in kinds:
            self.fields[URL] = forms.CharField(
                label="Or a URL",
                required=False,
                widget=forms.TextInput(
                    attrs={"inputmode": "url", "placeholder": "https://", "spellcheck": "false"}
                ),
                help_text="An http:// or https:// address: the server downloads the file.",
            )
        self.offers_datafiles = InputKind.DATAFILE in kinds
        """Whether the pipeline takes data files (the field itself needs a signed-in user)."""
        if self.offers_datafiles and caller.signed_in:
            self._add_datafile_field(pipeline.inputs.max_count > 1)
        if InputKind.RUN in kinds:
            self.fields[RUN] = forms.CharField(
                label="Or an earlier run",
                required=False,
                widget=forms.TextInput(attrs={"spellcheck": "false"}),
                help_text="The id of an earlier run, or the address of its page: its output "
                "files become the inputs.",
            )
        automatic = " Left empty, the previous run of the same file is used." * (
            pipeline.ancestor == PREVIOUS
        )
        self.fields[ANCESTOR] = forms.CharField(
            label="Compare with an earlier run",
            required=False,
            widget=forms.TextInput(attrs={"spellcheck": "false"}),
            help_text="The id of an earlier, succeeded run, or the address of its page: the "
            f"steps can compare this run with it.{automatic}",
        )
        self.param_names: dict[str, str] = {}  # form field name -> parameter name
        for name, field in param_fields(pipeline.params).items():
            field_name = f"param_{name}" if name in _RESERVED else name
            self.param_names[field_name] = name
            self.fields[field_name] = field

    def _add_datafile_field(self, several: bool) -> None:
        choices = [
            (str(f.pk), f"{f.name} ({filesizeformat(f.size)}, {format_date(f.created_at, _WHEN)})")
            for f in datafiles.own(self.caller)[:DATAFILE_CHOICES]
        ]
        if not choices:
            return
        options: dict[str, Any] = {"required": False, "help_text": ""}
        if several:
            self.fields[DATAFILE] = forms.MultipleChoiceField(
                label="Or data files", choices=choices, **options
            )
        else:
            self.fields[DATAFILE] = forms.ChoiceField(
                label="Or a data file", choices=[("", "(none)"), *choices], **options
            )

    @property
    def service(self) -> Service:
        return self._service or default_service()

    def input_fields(self) -> list[BoundField]:
        """The input fields that are offered (files, text, URL, data files, earlier run)."""
        return [self[name] for name in INPUT_FIELDS if name in self.fields]

    @property
    def has_datafiles(self) -> bool:
        """Whether the caller has data files to choose from here."""
        return DATAFILE in self.fields

    def param_fields(self) -> list[BoundField]:
        """The parameters' fields, in the model's order."""
        return [self[name] for name in self.param_names]

    def clean_url(self) -> list[InputSource]:
        text = self.cleaned_data.get(URL) or ""
        if not text.strip():
            return []
        try:
            return [url_input(text)]
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None

    def clean_datafile(self) -> list[InputSource]:
        chosen = self.cleaned_data.get(DATAFILE) or []
        ids = [chosen] if isinstance(chosen, str) else list(chosen)
        try:
            return [datafiles.as_input(self.caller, i, service=self.service) for i in ids if i]
        except NotFoundError as error:  # deleted since the form was shown
            raise forms.ValidationError(str(error)) from None

    def clean_run(self) -> list[InputSource]:
        text = self.cleaned_data.get(RUN) or ""
        if not text.strip():
            return []
        try:
            return [run_input(self.caller, run_id_from(text), self.service)]
        except (ValueError, NotFoundError) as error:
            raise forms.ValidationError(str(error)) from None

    def clean_ancestor(self) -> str | None:
        text = self.cleaned_data.get(ANCESTOR) or ""
        if not text.strip():
            return None
        try:
            run_id = ancestor_id(text)
            visible_run(self.caller, run_id, self.service)
        except SubmissionError as error:
            raise forms.ValidationError(error.errors[ANCESTOR]) from None
        except NotFoundError as error:
            raise forms.ValidationError(str(error)) from None
        return run_id

    @property
    def ancestor_field(self) -> BoundField:
        """The field naming the earlier run to compare with."""
        return self[ANCESTOR]

    def ancestor(self) -> str | None:
        """The id of the earlier run to compare with, if one was named."""
        ancestor: str | None = self.cleaned_data.get(ANCESTOR)
        return ancestor

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        text = cleaned.get(TEXT) or ""
        if text.strip() and self.takes_json:
            self.pasted_json, problem = parse_json(text)
            if problem is None:
                self.pasted_is_json = True
            elif not self.takes_text:
                self.add_error(TEXT, problem)
        return cleaned

    def inputs(self) -> list[InputSource]:
        """The inputs to submit: the uploaded files, the pasted text, the URL, the data files,
        then the earlier run (each if given)."""
        data = self.cleaned_data
        sources: list[InputSource] = [
            Upload(name=upload.name or "upload", stream=upload.file, media_type=upload.content_type)
            for upload in data.get(FILES) or []
        ]
        text = data.get(TEXT) or ""
        if text.strip():
            # As the box's label says: JSON when it reads as JSON and the pipeline takes JSON.
            pasted = JsonInput(self.pasted_json) if self.pasted_is_json else TextInput(text)
            sources.append(pasted)
        for name in (URL, DATAFILE, RUN):
            sources.extend(data.get(name) or [])
        return sources

    def params(self) -> dict[str, Any]:
        """The parameters to submit; a field left empty leaves its parameter at its default."""
        params = {}
        for field_name, name in self.param_names.items():
            value = self.cleaned_data.get(field_name)
            if value is not None and value != "":
                params[name] = value
        return params

    def show_refusal(self, refusal: SubmissionError) -> None:
        """Put each message of a refused submission next to the field it concerns: a parameter's
        at its field, an input's at the first input field (the file field if there is one),
        anything else at the top of the form."""
        by_param = {name: field_name for field_name, name in self.param_names.items()}
        inputs_field = next((name for name in INPUT_FIELDS if name in self.fields), None)
        for key, messages in refusal.errors.items():
            field: str | None = None
            prefix = ""
            if key.startswith("params."):
                param, _, rest = key.removeprefix("params.").partition(".")
                field = by_param.get(param)
                prefix = f"{rest}: " if rest and field else ""
            elif key == "inputs":
                field = inputs_field
            elif key == ANCESTOR:
                field = ANCESTOR
            for message in messages:
                self.add_error(field, prefix + message)
