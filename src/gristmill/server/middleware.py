"""Middleware of the whole site: chunked request bodies, and the pages' Content-Security-Policy.

Both are in ``MIDDLEWARE`` (:func:`gristmill.server.conf.django_settings`);
:class:`ChunkedBodyMiddleware` must come first, before anything reads a body.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream, WSGIRequest
from django.http import HttpRequest, HttpResponseBase

from gristmill.server.links import is_api_path

Handler = Callable[[HttpRequest], HttpResponseBase]

CHUNK = 1 << 16
SPOOL_IN_MEMORY = 1 << 20
"""A chunked body up to this size is held in memory; a larger one goes to a temporary file."""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""The pages use only the site's own scripts, styles and images: no inline code at all."""


class ChunkedBodyMiddleware:
    """Make a body sent with ``Transfer-Encoding: chunked`` readable.

    Django reads a WSGI request's body only as far as its ``Content-Length``, so a chunked
    body, which has none, reads as empty: an upload arrives without its file. Such a body is
    copied to a temporary file first (in memory up to :data:`SPOOL_IN_MEMORY`), and the
    request then carries its length like any other. A body that is not a multipart form is
    copied only one byte past ``DATA_UPLOAD_MAX_MEMORY_SIZE``, so that reading it is refused as
    too large (413) exactly as with a ``Content-Length``.
    """

    def __init__(self, get_response: Handler):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not _is_chunked(request):
            return self.get_response(request)
        assert isinstance(request, WSGIRequest)
        limit = None
        if not (request.content_type or "").startswith("multipart/"):
            most = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            limit = None if most is None else most + 1
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            size = _copy(request.environ["wsgi.input"], spool, limit)
            spool.seek(0)
            request.META["CONTENT_LENGTH"] = str(size)
            # WSGIRequest made its stream from the missing Content-Length: 0 bytes long.
            stream: Any = LimitedStream(cast(Any, spool), size)
            request._stream = stream
            return self.get_response(request)


def _is_chunked(request: HttpRequest) -> bool:
    if not isinstance(request, WSGIRequest) or request.META.get("CONTENT_LENGTH"):
        return False
    return "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()


def _copy(source: object, target: tempfile.SpooledTemporaryFile[bytes], limit: int | None) -> int:
    read = source.read  # type: ignore[attr-defined]
    size = 0
    while limit is None or size < limit:
        chunk = read(CHUNK if limit is None else min(CHUNK, limit - size))
        if not chunk:
            break
        target.write(chunk)
        size += len(chunk)
    return size


class ContentSecurityPolicyMiddleware:
    """Send :data:`CONTENT_SECURITY_POLICY` with every answer but the API's (pages, the
    admin, error pages), so that text a user managed to put into a page cannot run as code."""

    def __init__(self, get_response: Handler):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if not is_api_path(request.path):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
