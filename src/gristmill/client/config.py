"""Where the server is and who the caller is, shared by both clients."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urljoin

import httpx

from gristmill.client.errors import ServerUnreachableError

DEFAULT_SERVER = "http://127.0.0.1:8000"
POLL_SECONDS = 0.5
"""How often ``wait`` and ``follow`` ask: a remote server cannot ring the local doorbells."""


def http_options(server: str | None, token: str | None) -> tuple[str, dict[str, str]]:
    """The API's base URL and the headers of every request: ``server`` defaults to
    ``GRISTMILL_SERVER``, then to a local server; the bearer token is ``token``, else
    ``GRISTMILL_TOKEN`` (none if empty)."""
    address = (server or os.environ.get("GRISTMILL_SERVER") or DEFAULT_SERVER).rstrip("/")
    key = (token if token is not None else os.environ.get("GRISTMILL_TOKEN", "")).strip()
    return f"{address}/api/v1", ({"Authorization": f"Bearer {key}"} if key else {})


def absolute_url(server: str, path: str) -> str:
    """The address of ``path``, a link in an answer (``/tools/runs/<id>/``), on ``server``.

    The server's links are paths from its host's root, with whatever prefix the server is
    mounted at: they are resolved against the host, not appended to ``server``
    (``http://host/tools`` and ``/tools/runs/<id>/`` make ``http://host/tools/runs/<id>/``)."""
    return urljoin(f"{server.rstrip('/')}/", path)


def server_of(http: httpx.Client | httpx.AsyncClient) -> str:
    return str(http.base_url).rstrip("/").removesuffix("/api/v1")


@contextmanager
def reaching(server: str) -> Iterator[None]:
    """Turn httpx's transport errors into ``ServerUnreachableError``."""
    try:
        yield
    except httpx.TransportError as error:
        raise ServerUnreachableError(f"cannot reach the server at {server}: {error}") from error
