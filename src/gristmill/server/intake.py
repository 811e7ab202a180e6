"""Request bodies received on the event loop, so that a slow client holds no request thread.

Django's views run in a pool of threads (:mod:`gristmill.server.asgi`), and a WSGI view reads
its request body from inside its thread: ten clients sending a body a byte a second would hold
ten threads for as long as they liked. :class:`BodyIntake` sits in front of the pool and
receives each body whole first, asynchronously, into a spool (in memory while small, then a
temporary file), under three rules (:class:`BodyLimits`):

- the next bytes of a body must come within ``timeout`` seconds;
- once its first ``timeout`` seconds are over, a body must have averaged ``min_rate`` bytes a
  second since it began;
- one client address may be sending at most ``per_client`` bodies at once.

A body that breaks the first two rules is answered 408, a body over the third 429 with
``Retry-After``; each closes the connection (:mod:`gristmill.server.refusals`). Only a complete
body goes on, as :data:`BODY` in the scope; :func:`spooled_input` makes it the WSGI app's
``wsgi.input``. Requests without a body pass straight through.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import IO, Any

from gristmill.authoring.inputs import human_size
from gristmill.server.refusals import refusal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

BODY = "gristmill.body"
"""The scope key under which a received body goes on (a :class:`SpooledBody`)."""
_IN_MEMORY = 1 << 20
"""Bodies up to this size stay in memory; larger ones go to a temporary file."""


@dataclass(frozen=True)
class BodyLimits:
    """How slowly, and how many at once, clients may send request bodies."""

    timeout: float
    """Seconds to wait for the next bytes of a body; also the grace before ``min_rate``."""
    min_rate: int
    """Bytes per second a body must average, once its first ``timeout`` seconds are over."""
    per_client: int
    """Bodies one client address may be sending at once."""


@dataclass(frozen=True)
class SpooledBody:
    """A request body received whole: its bytes in ``file`` (positioned at the start)."""

    file: IO[bytes]
    size: int


class BodyTooSlowError(Exception):
    """The body broke the deadline or the minimum rate of its :class:`BodyLimits`."""


class ClientGoneError(Exception):
    """The client disconnected before its body was complete."""


class BodyIntake:
    """ASGI middleware: receive each request body whole within :class:`BodyLimits`, then pass
    the request on to ``app`` with the body under :data:`BODY` in its scope.

    ``app`` is called only for a complete body; it must read the body from the scope (its
    ``receive`` gives no more body, only the client's disconnection). The spool is closed
    (a temporary file deleted) when ``app`` returns.
    """

    def __init__(self, app: ASGIApp, limits: BodyLimits):
        self.app = app
        self.limits = limits
        self._sending: Counter[str] = Counter()
        rate = human_size(limits.min_rate)
        unit = "second" if limits.timeout == 1 else "seconds"
        self._too_slow = (
            f"the request body came too slowly: the server waits {limits.timeout:g} {unit} at "
            f"most for more of it, and needs {rate} a second on average; try again on a "
            "faster connection"
        )
        self._too_many = (
            f"this address is already sending {limits.per_client} requests with a body; "
            "wait for one to finish, then try again"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else ""
        if self._sending[client] >= self.limits.per_client:
            # By then a stalled body has been cut off, so a retry can get through.
            retry = math.ceil(self.limits.timeout)
            await _refuse(scope, send, 429, self._too_many, retry_after=retry)
            return
        self._sending[client] += 1
        try:
            body = await receive_body(receive, self.limits)
        except BodyTooSlowError:
            await _refuse(scope, send, 408, self._too_slow)
            return
        except ClientGoneError:
            return
        finally:
            self._sending[client] -= 1
            if not self._sending[client]:
                del self._sending[client]
        with body.file:
            await self.app({**scope, BODY: body}, _after_body(receive), send)


async def receive_body(receive: Receive, limits: BodyLimits) -> SpooledBody:
    """Receive a request's whole body from ASGI ``receive`` into a spool, within ``limits``'
    ``timeout`` and ``min_rate`` (``per_client`` is :class:`BodyIntake`'s business).

    Returns the body, its file at the start (the caller closes it). Raises
    :class:`BodyTooSlowError` when the next bytes do not come in time, and
    :class:`ClientGoneError` when the client disconnects; the spool is then discarded.
    """
    loop = asyncio.get_running_loop()
    spool = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY)  # noqa: SIM115 - returned
    try:
        started = last = loop.time()
        size = 0
        while True:
            # Due before the wait for more runs out, and before the average falls too low.
            due = min(last + limits.timeout, started + limits.timeout + size / limits.min_rate)
            try:
                async with asyncio.timeout_at(due):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlowError() from None
            if message["type"] == "http.disconnect":
                raise ClientGoneError()
            chunk = message.get("body", b"")
            # A write to the spool's file lands in the page cache: too quick to be worth a
            # thread.
            spool.write(chunk)
            size += len(chunk)
            last = loop.time()
            if not message.get("more_body", False):
                break
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return SpooledBody(spool, size)


def spooled_input(app: WSGIApp) -> WSGIApp:
    """Wrap a WSGI app run by a2wsgi behind :class:`BodyIntake`: its ``wsgi.input`` becomes the
    received body, and ``CONTENT_LENGTH`` that body's size (a chunked body has none of its own).
    a2wsgi puts the ASGI scope in the environ as ``asgi.scope``."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ.get("asgi.scope", {}).get(BODY)
        if body is not None:
            environ["wsgi.input"] = body.file
            environ["CONTENT_LENGTH"] = str(body.size)
        return app(environ, start_response)

    return wsgi


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False


def _after_body(receive: Receive) -> Receive:
    # The body was received already: say so once, then pass on what comes (a disconnection).
    done = False

    async def after() -> Message:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return await receive()

    return after


async def _refuse(
    scope: Scope, send: Send, status: int, message: str, *, retry_after: int | None = None
) -> None:
    answer = refusal(scope["path"], status, message, retry_after=retry_after)
    await send({"type": "http.response.start", "status": status, "headers": list(answer.headers)})
    with contextlib.suppress(OSError):  # the client may be gone already
        await send({"type": "http.response.body", "body": answer.body})
