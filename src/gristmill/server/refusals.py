"""The answers ``gristmill serve`` gives before a request reaches a view: a body that came too
slowly (408), too many bodies from one address (429), a request that is not valid HTTP (400).

Under ``/api/v1/`` (below any prefix gristmill is mounted at) a refusal is the API's JSON error
(:func:`gristmill.server.api.errors.error_response`), elsewhere the site's error page, so that a
client meets one format whichever layer refused it. Every refusal closes the connection: what
the client sends after it cannot be trusted to start a new request.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

API_PREFIX = "/api/v1/"
"""Where answers are JSON: paths with this in them. This layer answers before URLs are resolved,
so it cannot know the prefix a Django project mounted gristmill at (``/tools/api/v1/``)."""


@dataclass(frozen=True)
class Refusal:
    """A complete answer: status, headers and body."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


def refusal(path: str, status: int, message: str, *, retry_after: int | None = None) -> Refusal:
    """The answer with ``status`` and ``message`` for a request to ``path`` (JSON for a path
    with :data:`API_PREFIX` in it, an HTML page elsewhere), with ``Connection: close`` and, if
    given, ``Retry-After`` in seconds. ``message`` is a sentence for the user without a final
    stop."""
    content_type, body = _rendered(API_PREFIX in path, status, message)
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode("ascii")))
    return Refusal(status, tuple(headers), body)


# Messages are few and fixed (they name settings, not requests), so each is rendered once: the
# refusals are made on the event loop, where a template should not be rendered per request.
@functools.lru_cache(maxsize=64)
def _rendered(api: bool, status: int, message: str) -> tuple[bytes, bytes]:
    if api:
        from gristmill.server.api.errors import error_response

        response = error_response(status, message)
        return response["Content-Type"].encode("latin-1"), response.content
    from django.template.loader import render_to_string

    page = render_to_string("gristmill/error.html", {"status": status, "message": message})
    return b"text/html; charset=utf-8", page.encode()
