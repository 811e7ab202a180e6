"""uvicorn's HTTP protocol (on httptools) with gristmill's answers to requests it cannot read.

uvicorn answers a request it cannot parse (a ``Content-Length`` that is not a number or does not
match the bytes sent, a URL and headers of tens of kilobytes) itself, in plain text, before any
application sees it; and it waits for a request's headers as long as the client likes, so that
a client sending them a byte at a time, or nothing at all, keeps its connection for ever.
:class:`GristmillHttpToolsProtocol` answers the first as every other refusal (the API's JSON
error under ``/api/v1/``, the error page elsewhere: :mod:`gristmill.server.refusals`) and gives
the headers a deadline, answered 408. ``gristmill serve`` passes :func:`protocol` to uvicorn
as ``http=``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gristmill.server.refusals import Refusal, refusal

NOT_HTTP = (
    "the request cannot be read: it is not valid HTTP (check its Content-Length header, "
    "and the length of its URL)"
)


def protocol(read_timeout: float) -> type[GristmillHttpToolsProtocol]:
    """The protocol class for uvicorn, with headers due within ``read_timeout`` seconds."""
    return type(
        "GristmillHttpToolsProtocol", (GristmillHttpToolsProtocol,), {"timeout": read_timeout}
    )


def headers_too_slow(timeout: float) -> str:
    """The message of the 408 for headers that did not come within ``timeout`` seconds."""
    unit = "second" if timeout == 1 else "seconds"
    return (
        f"the request's headers came too slowly: the server waits {timeout:g} {unit} at most "
        "for them; try again on a faster connection"
    )


class GristmillHttpToolsProtocol(HttpToolsProtocol):
    """:class:`~uvicorn.protocols.http.httptools_impl.HttpToolsProtocol` that refuses in
    gristmill's formats: a request it cannot parse with 400, headers that do not come whole
    within :attr:`timeout` seconds (from the connection's start, or from the first byte of a
    request after an earlier one) with 408; both close the connection.

    The format is chosen by the path of the request refused, or, when the parser failed before
    any path, of the request before it on the same connection (the bytes past a short
    ``Content-Length`` are such a case).
    """

    timeout: float = 20.0
    """Seconds a request's headers may take."""
    _last_target = b""
    _headers_due: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._await_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._await_headers()

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        self._last_target = self.url
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self._stop_waiting()
        self._refuse(refusal(self._path(), 400, NOT_HTTP))

    def _await_headers(self) -> None:
        self._stop_waiting()
        self._headers_due = self.loop.call_later(self.timeout, self._headers_late)

    def _stop_waiting(self) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def _headers_late(self) -> None:
        self._headers_due = None
        if self.cycle is not None and not self.cycle.response_complete:
            # A request pipelined behind one still being answered is not read meanwhile
            # (uvicorn pauses reading): its time starts when that answer is complete.
            self._await_headers()
            return
        self._refuse(refusal(self._path(), 408, headers_too_slow(self.timeout)))

    def _path(self) -> str:
        target = getattr(self, "url", b"") or self._last_target
        return target.split(b"?", 1)[0].decode("latin-1")

    def _refuse(self, answer: Refusal) -> None:
        if self.transport.is_closing():
            return
        content = [STATUS_LINE[answer.status]]
        for name, value in [*self.server_state.default_headers, *answer.headers]:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([b"\r\n", answer.body])
        self.transport.write(b"".join(content))
        self.transport.close()
