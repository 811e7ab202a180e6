"""uvicorn's HTTP protocol (on httptools) with gristmill's answer to a request it cannot parse.

uvicorn answers such a request (a ``Content-Length`` that is not a number or does not match the
bytes sent, a URL and headers of tens of kilobytes) itself, in plain text, before any
application sees it. :class:`GristmillHttpToolsProtocol` answers it as every other refusal:
the API's JSON error under ``/api/v1/``, the error page elsewhere
(:mod:`gristmill.server.refusals`). ``gristmill serve`` passes it to uvicorn as ``http=``.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gristmill.server.refusals import refusal

NOT_HTTP = (
    "the request cannot be read: it is not valid HTTP (check its Content-Length header, "
    "and the length of its URL)"
)


class GristmillHttpToolsProtocol(HttpToolsProtocol):
    """:class:`~uvicorn.protocols.http.httptools_impl.HttpToolsProtocol` whose 400 answer for
    a request it cannot parse is :func:`~gristmill.server.refusals.refusal`'s, chosen by the
    path of that request (or, when the parser failed before any path, of the request before it
    on the same connection: the bytes past a short ``Content-Length`` are such a case)."""

    _last_target = b""

    def on_headers_complete(self) -> None:
        self._last_target = self.url
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        target = getattr(self, "url", b"") or self._last_target
        path = target.split(b"?", 1)[0].decode("latin-1")
        answer = refusal(path, 400, NOT_HTTP)
        content = [STATUS_LINE[400]]
        for name, value in [*self.server_state.default_headers, *answer.headers]:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([b"\r\n", answer.body])
        self.transport.write(b"".join(content))
        self.transport.close()
