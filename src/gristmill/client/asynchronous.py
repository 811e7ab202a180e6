"""``AsyncClient``: ``Client``'s methods, for asyncio programs (``await`` each one)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from gristmill.client import calls
from gristmill.client.calls import Entry, Input, JsonObject, PathLike
from gristmill.client.config import POLL_SECONDS, http_options, reaching, server_of
from gristmill.client.errors import WaitTimeoutError, error_from
from gristmill.states import RunState

T = TypeVar("T")


class AsyncClient:
    """A gristmill server's REST API. ``server`` defaults to ``GRISTMILL_SERVER`` (else
    ``http://127.0.0.1:8000``), ``token`` to ``GRISTMILL_TOKEN`` (else anonymous).

    Every method raises a ``ResponseError`` subclass for an error answer and
    ``ServerUnreachableError`` when no answer comes. Use it with ``async with``, or ``aclose`` it.
    """

    def __init__(
        self, server: str | None = None, *, token: str | None = None, timeout: float = 60
    ) -> None:
        base_url, headers = http_options(server, token)
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout)
        self.server = server_of(self._http)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _send(self, call: calls.Call[T]) -> T:
        with reaching(self.server):
            return await call.send_async(self._http)

    async def pipelines(self) -> list[JsonObject]:
        """Every pipeline the caller may use, with its inputs and parameter schema."""
        return await self._send(calls.pipelines())

    async def pipeline(self, name: str) -> JsonObject:
        """One pipeline (``NotFoundError`` if the caller may not see it)."""
        return await self._send(calls.pipeline(name))

    async def submit(
        self,
        pipeline: str,
        *inputs: Input,
        params: Mapping[str, Any] | None = None,
        ancestor: str | None = None,
        notify_email: bool | None = None,
        webhook_url: str | None = None,
    ) -> JsonObject:
        """Submit a run of ``pipeline``; return ``{id, url, status_url, ...}``. Paths are
        uploaded; ``Text``, ``Json``, ``Url``, ``DataFile`` and ``RunOutputs`` name other inputs.
        Parameters are JSON values of their types; ``ancestor`` names an earlier, succeeded run
        to compare with (its id or address). ``notify_email`` (default: the user's own
        setting) e-mails the signed-in caller when the run ends; ``webhook_url`` is called
        then. ``InvalidError`` names each refused field."""
        with ExitStack() as files:
            call = calls.submit(
                pipeline,
                inputs,
                params,
                files,
                ancestor,
                notify_email=notify_email,
                webhook_url=webhook_url,
            )
            return await self._send(call)

    async def submit_many(
        self, pipeline: str, entries: Sequence[Entry | Mapping[str, Any]]
    ) -> list[JsonObject]:
        """Submit many runs of ``pipeline`` in one transaction; return each run's ``{id, url,
        status_url, ...}`` in the order of ``entries``. Each entry is an ``Entry`` (inline
        inputs only: no local files) or a JSON object as the API takes it. All or nothing:
        ``InvalidError`` names each refused field as ``entries.<index>.<field>``."""
        answer = await self._send(calls.submit_many(pipeline, entries))
        return list(answer["runs"])

    async def status(self, run_id: str) -> JsonObject:
        """A run's state, progress, error and steps."""
        return await self._send(calls.status(run_id))

    async def wait(
        self,
        run_id: str,
        timeout: float | None = None,
        progress: Callable[[JsonObject], None] | None = None,
    ) -> JsonObject:
        """Wait until the run ends and return its last status; ``progress`` is called with each
        status seen. Raises ``WaitTimeoutError`` after ``timeout`` seconds (never, if None)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = await self.status(run_id)
            if progress is not None:
                progress(status)
            if RunState(status["state"]).is_terminal:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeoutError(
                    f"the run {run_id} had not ended after {timeout:g} s (it is {status['state']})",
                    status,
                )
            await asyncio.sleep(POLL_SECONDS)

    async def log(self, run_id: str, after: int = 0, limit: int | None = None) -> JsonObject:
        """The run's log lines after line id ``after``: ``{lines: [...], next}``."""
        return await self._send(calls.log(run_id, after, limit))

    async def follow(self, run_id: str, after: int = 0) -> AsyncIterator[JsonObject]:
        """Each log line after ``after`` as it is written, until the run has ended."""
        while True:
            ended = RunState((await self.status(run_id))["state"]).is_terminal
            page = await self.log(run_id, after)
            for line in page["lines"]:
                yield line
            after = page["next"]
            if ended and not page["lines"]:
                return
            if not page["lines"]:
                await asyncio.sleep(POLL_SECONDS)

    async def results(self, run_id: str) -> JsonObject:
        """Each step's result context and whether it is stale."""
        return await self._send(calls.results(run_id))

    async def outputs(self, run_id: str) -> list[JsonObject]:
        """The run's output files: ``[{step, name, size, sha256, media_type, url}]``."""
        return await self._send(calls.outputs(run_id))

    async def download(self, run_id: str, step: str, name: str, to: PathLike) -> Path:
        """Stream one output file into ``to`` (written whole or not at all); return ``to``."""
        return await self._stream(calls.output_path(run_id, step, name), to)

    async def download_zip(self, run_id: str, to: PathLike) -> Path:
        """Stream every output, as one zip of ``step/name`` entries, into ``to``."""
        return await self._stream(calls.zip_path(run_id), to)

    async def findings_page(
        self,
        run_id: str,
        step: str,
        kind: str | None = None,
        after: int = 0,
        limit: int | None = None,
    ) -> JsonObject:
        """One page of a map step's findings, for items numbered above ``after``:
        ``{findings: [{item, batch, kind, finding}], next}`` (``next`` is None at the end)."""
        return await self._send(calls.findings(run_id, step, kind, after, limit))

    async def findings(
        self, run_id: str, step: str, kind: str | None = None, after: int = 0
    ) -> AsyncIterator[JsonObject]:
        """Each finding of map step ``step`` (of ``kind`` only, if given), in item order:
        ``{item, batch, kind, finding}``, read a page at a time. ``NotFoundError`` for a step
        that is not a map step of the run."""
        while True:
            page = await self.findings_page(run_id, step, kind, after)
            for finding in page["findings"]:
                yield finding
            if page["next"] is None:
                return
            after = page["next"]

    async def download_findings(
        self, run_id: str, step: str, to: PathLike, kind: str | None = None
    ) -> Path:
        """Stream a map step's findings as JSON Lines into ``to`` (written whole or not at
        all); return ``to``."""
        return await self._stream(calls.findings_jsonl_path(run_id, step, kind), to)

    async def retry_batches(self, run_id: str) -> JsonObject:
        """Queue again the failed batches of an ended run's map steps, and only those:
        ``{batches, state}``. ``ConflictError`` if the run is queued or running, or has
        nothing to retry."""
        return await self._send(calls.retry_batches(run_id))

    async def cancel(self, run_id: str) -> JsonObject:
        """Cancel the run: ``{state}``. ``ConflictError`` if it has already ended."""
        return await self._send(calls.cancel(run_id))

    async def rerun(self, run_id: str) -> JsonObject:
        """Recompute the stale steps. ``ConflictError`` if the run is queued, running or expired."""
        return await self._send(calls.rerun(run_id))

    async def delete(self, run_id: str) -> None:
        """Delete the run's files, results and log. ``ConflictError`` if it has not ended."""
        await self._send(calls.delete(run_id))

    async def pin(self, run_id: str, pinned: bool = True) -> bool:
        """Keep the run past its expiry (or, with ``pinned=False``, no longer); return the pin."""
        return await self._send(calls.pin(run_id, pinned))

    async def datafiles(self) -> list[JsonObject]:
        """The caller's data files, newest first."""
        return await self._send(calls.datafiles())

    async def datafile(self, datafile_id: str) -> JsonObject:
        """One data file's description."""
        return await self._send(calls.datafile(datafile_id))

    async def upload_datafile(self, path: PathLike) -> JsonObject:
        """Keep a local file on the server as a data file; return its description."""
        with ExitStack() as files:
            return await self._send(calls.upload_datafile(Path(path), files))

    async def download_datafile(self, datafile_id: str, to: PathLike) -> Path:
        """Stream a data file's content into ``to``."""
        return await self._stream(calls.datafile_content_path(datafile_id), to)

    async def delete_datafile(self, datafile_id: str) -> None:
        """Delete a data file (runs that used it keep their copies)."""
        await self._send(calls.delete_datafile(datafile_id))

    async def document(self, datafile_id: str) -> Any:
        """A data file's JSON document: the JSON value it holds. ``NotFoundError`` (saying
        why) for a data file that is not kept as one."""
        return await self._send(calls.document(datafile_id))

    async def search_documents(
        self, path: str, value: str | None = None, *, page: int = 1, per_page: int = 50
    ) -> JsonObject:
        """The caller's data files whose JSON document has ``value`` at the JSON ``path``
        (``meta.source``), a page at a time: ``{count, page, pages, results}``."""
        return await self._send(calls.search_documents(path, value, page, per_page))

    async def convert_datafile(self, datafile_id: str, to: str) -> JsonObject:
        """Convert a data file to ``json``, ``csv`` or ``xlsx``; the new data file."""
        return await self._send(calls.convert_datafile(datafile_id, to))

    async def tokens(self) -> list[JsonObject]:
        """The caller's API tokens (never their keys)."""
        return await self._send(calls.tokens())

    async def create_token(self, name: str) -> JsonObject:
        """A new API token for the caller, with its ``key``, given this once."""
        return await self._send(calls.create_token(name))

    async def delete_token(self, token_id: int | str) -> None:
        """Revoke one of the caller's tokens."""
        await self._send(calls.delete_token(str(token_id)))

    async def _stream(self, path: str, to: PathLike) -> Path:
        target, part = Path(to), calls.partial(Path(to))
        with reaching(self.server):
            async with self._http.stream("GET", path) as answer:
                if not answer.is_success:
                    await answer.aread()
                    raise error_from(answer)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with part.open("wb") as file:
                        async for chunk in answer.aiter_bytes():
                            file.write(chunk)
                except BaseException:
                    part.unlink(missing_ok=True)
                    raise
        part.replace(target)
        return target
