"""The requests of the REST API, built once for the sync and the async client.

Each function returns a ``Call``: what to send and how to read the answer. The clients only
send it (``gristmill.client.sync``, ``gristmill.client.asynchronous``), so a method is written
here once, whatever the transport.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode

import httpx

from gristmill.client.errors import error_from

T = TypeVar("T")
JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Text:
    """An inline text input (``name`` is optional)."""

    text: str
    name: str | None = None


@dataclass(frozen=True)
class Json:
    """An inline JSON input (``name`` is optional)."""

    value: Any
    name: str | None = None


@dataclass(frozen=True)
class Url:
    """A file the run's worker downloads before its first step (http or https)."""

    url: str


@dataclass(frozen=True)
class DataFile:
    """One of the caller's data files on the server, by id."""

    id: str


@dataclass(frozen=True)
class RunOutputs:
    """The output files of an earlier, succeeded run (only ``step``'s if given)."""

    run: str
    step: str | None = None


@dataclass(frozen=True)
class RunItems:
    """The items of an earlier run's map step that match a filter (a filtered run): those
    where the JSON path ``where`` equals ``value``, or those with a finding of kind
    ``finding``. ``step`` may be left out when the run has one map step."""

    run: str
    step: str | None = None
    where: str | None = None
    value: Any = None
    finding: str | None = None


PathLike = str | os.PathLike[str]
"""A local file's path."""

Input = str | os.PathLike[str] | Text | Json | Url | DataFile | RunOutputs | RunItems
"""A path (a local file, uploaded) or one of the inputs above."""


def _json(answer: httpx.Response) -> Any:
    return answer.json()


def _nothing(answer: httpx.Response) -> None:
    return None


@dataclass
class Call(Generic[T]):
    """One request and how to read its successful answer."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    data: Mapping[str, Any] | None = None
    files: list[tuple[str, tuple[str, Any]]] = field(default_factory=list)

    def send(self, http: httpx.Client) -> T:
        answer = http.request(self.method, self.path, **self._options())
        return self.answer(answer)

    async def send_async(self, http: httpx.AsyncClient) -> T:
        answer = await http.request(self.method, self.path, **self._options())
        return self.answer(answer)

    def answer(self, answer: httpx.Response) -> T:
        """What a successful answer says; raises the ``ResponseError`` of any other."""
        if not answer.is_success:
            raise error_from(answer)
        return self.read(answer)

    def _options(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "json": self.json,
            "data": self.data,
            "files": self.files or None,
        }


def segment(value: str) -> str:
    """A path segment, escaped (a name may hold a space or a slash)."""
    return quote(value, safe="")


def pipelines() -> Call[list[JsonObject]]:
    return Call("GET", "/pipelines", _json)


def pipeline(name: str) -> Call[JsonObject]:
    return Call("GET", f"/pipelines/{segment(name)}", _json)


def submit(
    name: str,
    inputs: Sequence[Input],
    params: Mapping[str, Any] | None,
    files: ExitStack,
    ancestor: str | None = None,
    *,
    notify_email: bool | None = None,
    webhook_url: str | None = None,
) -> Call[JsonObject]:
    """A submission: JSON when no input is a local file, else a multipart form whose files
    ``files`` opens (the caller closes it once the request is sent). ``notify_email`` and
    ``webhook_url`` are sent only when given."""
    path = f"/pipelines/{segment(name)}/runs"
    paths = [Path(item) for item in inputs if isinstance(item, (str, os.PathLike))]
    named: dict[str, Any] = {"ancestor": ancestor} if ancestor else {}
    if notify_email is not None:
        named["notify_email"] = notify_email
    if webhook_url is not None:
        named["webhook_url"] = webhook_url
    if not paths:
        body = {"params": dict(params or {}), "inputs": [_inline(i) for i in inputs], **named}
        return Call("POST", path, _json, json=body)
    form: dict[str, Any] = {
        "params": json.dumps(dict(params or {})),
        "url": [],
        "datafile": [],
        "run": [],
        **{
            key: json.dumps(value) if key == "notify_email" else value
            for key, value in named.items()
        },
    }
    for item in inputs:
        if isinstance(item, Url):
            form["url"].append(item.url)
        elif isinstance(item, DataFile):
            form["datafile"].append(item.id)
        elif isinstance(item, RunOutputs) and item.step is None:
            form["run"].append(item.run)
        elif not isinstance(item, (str, os.PathLike)):
            raise ValueError(
                f"{item!r} cannot be sent with local files: send texts, JSON values and one "
                "step's outputs in a submission without files"
            )
    uploads = [("files", (p.name, files.enter_context(p.open("rb")))) for p in paths]
    return Call("POST", path, _json, data={k: v for k, v in form.items() if v}, files=uploads)


@dataclass(frozen=True)
class Entry:
    """One run of a bulk submission: inline inputs (no local files) and parameters."""

    inputs: Sequence[Input] = ()
    params: Mapping[str, Any] | None = None
    ancestor: str | None = None
    """An earlier, succeeded run to compare with: its id or its address."""
    notify_email: bool | None = None
    """E-mail the caller when the run ends (``None``: the user's own setting)."""
    webhook_url: str | None = None
    """A URL to call (a signed POST) when the run ends."""


def submit_many(name: str, entries: Sequence[Entry | Mapping[str, Any]]) -> Call[JsonObject]:
    """A bulk submission: each entry an :class:`Entry`, or a JSON object as the API takes it
    (``{"params": ..., "inputs": [...]}``), sent as it is."""
    body = {"entries": [_entry(entry, index) for index, entry in enumerate(entries)]}
    return Call("POST", f"/pipelines/{segment(name)}/runs/bulk", _json, json=body)


def _entry(entry: Entry | Mapping[str, Any], index: int) -> Any:
    if not isinstance(entry, Entry):
        return entry
    for item in entry.inputs:
        if isinstance(item, (str, os.PathLike)):
            raise ValueError(
                f"entry {index}: {item!r} is a local file; a bulk submission takes texts, JSON "
                "values, URLs, data files and earlier runs' outputs only"
            )
    body: JsonObject = {
        "params": dict(entry.params or {}),
        "inputs": [_inline(i) for i in entry.inputs],
    }
    if entry.ancestor:
        body["ancestor"] = entry.ancestor
    if entry.notify_email is not None:
        body["notify_email"] = entry.notify_email
    if entry.webhook_url is not None:
        body["webhook_url"] = entry.webhook_url
    return body


def _inline(item: Input) -> JsonObject:
    if isinstance(item, Text):
        return {"kind": "text", "text": item.text, **({"name": item.name} if item.name else {})}
    if isinstance(item, Json):
        return {"kind": "json", "value": item.value, **({"name": item.name} if item.name else {})}
    if isinstance(item, Url):
        return {"kind": "url", "url": item.url}
    if isinstance(item, DataFile):
        return {"kind": "datafile", "id": item.id}
    if isinstance(item, RunItems):
        chosen: JsonObject = {"kind": "items", "run": item.run}
        if item.step is not None:
            chosen["step"] = item.step
        if item.finding is not None:
            chosen["finding"] = item.finding
        else:
            chosen["where"], chosen["value"] = item.where, item.value
        return chosen
    assert isinstance(item, RunOutputs)
    return {"kind": "run", "run": item.run, **({"step": item.step} if item.step else {})}


def status(run_id: str) -> Call[JsonObject]:
    return Call("GET", f"/runs/{segment(run_id)}", _json)


def log(run_id: str, after: int = 0, limit: int | None = None) -> Call[JsonObject]:
    params = {"after": after, **({"limit": limit} if limit is not None else {})}
    return Call("GET", f"/runs/{segment(run_id)}/log", _json, params=params)


def results(run_id: str) -> Call[JsonObject]:
    return Call("GET", f"/runs/{segment(run_id)}/results", _json)


def outputs(run_id: str) -> Call[list[JsonObject]]:
    return Call("GET", f"/runs/{segment(run_id)}/outputs", _json)


def output_path(run_id: str, step: str, name: str) -> str:
    return f"/runs/{segment(run_id)}/outputs/{segment(step)}/{segment(name)}"


def zip_path(run_id: str) -> str:
    return f"/runs/{segment(run_id)}/outputs.zip"


def cancel(run_id: str) -> Call[JsonObject]:
    return Call("POST", f"/runs/{segment(run_id)}/cancel", _json)


def rerun(run_id: str) -> Call[JsonObject]:
    return Call("POST", f"/runs/{segment(run_id)}/rerun", _json)


def findings(
    run_id: str, step: str, kind: str | None = None, after: int = 0, limit: int | None = None
) -> Call[JsonObject]:
    params: dict[str, Any] = {"step": step, "after": after}
    if kind is not None:
        params["kind"] = kind
    if limit is not None:
        params["limit"] = limit
    return Call("GET", f"/runs/{segment(run_id)}/findings", _json, params=params)


def findings_jsonl_path(run_id: str, step: str, kind: str | None = None) -> str:
    query = urlencode({"step": step, **({"kind": kind} if kind is not None else {})})
    return f"/runs/{segment(run_id)}/findings.jsonl?{query}"


def retry_batches(run_id: str) -> Call[JsonObject]:
    return Call("POST", f"/runs/{segment(run_id)}/retry-batches", _json)


def delete(run_id: str) -> Call[None]:
    return Call("DELETE", f"/runs/{segment(run_id)}", _nothing)


def pin(run_id: str, pinned: bool) -> Call[bool]:
    def read(answer: httpx.Response) -> bool:
        return bool(answer.json()["pinned"])

    return Call("PUT" if pinned else "DELETE", f"/runs/{segment(run_id)}/pin", read)


def datafiles() -> Call[list[JsonObject]]:
    return Call("GET", "/datafiles", _json)


def datafile(datafile_id: str) -> Call[JsonObject]:
    return Call("GET", f"/datafiles/{segment(datafile_id)}", _json)


def upload_datafile(path: Path, files: ExitStack) -> Call[JsonObject]:
    upload = ("file", (path.name, files.enter_context(path.open("rb"))))
    return Call("POST", "/datafiles", _json, files=[upload])


def datafile_content_path(datafile_id: str) -> str:
    return f"/datafiles/{segment(datafile_id)}/content"


def delete_datafile(datafile_id: str) -> Call[None]:
    return Call("DELETE", f"/datafiles/{segment(datafile_id)}", _nothing)


def document(datafile_id: str) -> Call[Any]:
    return Call("GET", f"/datafiles/{segment(datafile_id)}/document", _json)


def search_documents(path: str, value: str | None, page: int, per_page: int) -> Call[JsonObject]:
    params = {"path": path, "page": page, "per_page": per_page}
    return Call("GET", "/documents", _json, params={**params, **_given(value=value)})


def _given(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def convert_datafile(datafile_id: str, to: str) -> Call[JsonObject]:
    return Call("POST", f"/datafiles/{segment(datafile_id)}/conversions", _json, json={"to": to})


def tokens() -> Call[list[JsonObject]]:
    return Call("GET", "/tokens", _json)


def create_token(name: str) -> Call[JsonObject]:
    return Call("POST", "/tokens", _json, json={"name": name})


def delete_token(token_id: str) -> Call[None]:
    return Call("DELETE", f"/tokens/{segment(str(token_id))}", _nothing)


def partial(target: Path) -> Path:
    """Where a download is written until it is complete, beside its target."""
    return target.with_name(f".{target.name}.part")
