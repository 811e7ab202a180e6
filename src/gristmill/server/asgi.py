"""The application ``gristmill serve`` runs with uvicorn.

gristmill's views are synchronous (they talk to the database), so Django runs as a WSGI
application inside uvicorn, adapted by a2wsgi's thread pools. Django's own ASGI handler would
start extra threads for every request and cost several times as much per request.

No client can starve the others (promise 14):

- request bodies are received whole on the event loop first, within deadlines, a minimum rate
  and a per-address limit (:class:`~gristmill.server.intake.BodyIntake`), so a thread is taken
  only by a request that is complete;
- the health check and the reads of a run's status and log have threads of their own
  (:data:`QUICK_THREADS`), which no long request (a big upload being stored, a slow page) can
  take, so they keep answering however busy the other :data:`THREADS` are.

Django must be configured first (``gristmill.server.conf.setup`` or
``DJANGO_SETTINGS_MODULE=gristmill.server.settings``).
"""

from __future__ import annotations

import re
from typing import Any

from a2wsgi import WSGIMiddleware
from django.core.wsgi import get_wsgi_application

from gristmill.server.conf import current_settings
from gristmill.server.intake import BodyIntake, BodyLimits, Receive, Scope, Send, spooled_input

THREADS = 10
"""Threads for every request but the quick reads."""
QUICK_THREADS = 4
"""Threads for the quick reads only: ``GET``/``HEAD`` of ``/healthz`` and of a run's status or
log in the API."""
# Below any prefix: a Django project may mount gristmill's URLs at /tools/.
_QUICK = re.compile(r"/(?:healthz|api/v1/runs/[^/]+(?:/log)?)$")

# Django's handler returns an HttpResponse, which is the iterable of bytes WSGI expects; the
# stubs of the two libraries just do not say so.
_django: Any = spooled_input(get_wsgi_application())
_threads = WSGIMiddleware(_django, workers=THREADS)
_quick_threads = WSGIMiddleware(_django, workers=QUICK_THREADS)


async def _lanes(scope: Scope, receive: Receive, send: Send) -> None:
    quick = scope.get("method") in ("GET", "HEAD") and _QUICK.match(scope.get("path", ""))
    await (_quick_threads if quick else _threads)(scope, receive, send)  # type: ignore[arg-type]


def _limits() -> BodyLimits:
    settings = current_settings()
    return BodyLimits(
        timeout=settings.read_timeout,
        min_rate=settings.body_min_rate,
        per_client=settings.bodies_per_client,
    )


application = BodyIntake(_lanes, _limits())
