"""The application ``gristmill serve`` runs with uvicorn.

gristmill's views are synchronous (they talk to the database), so Django runs as a WSGI
application inside uvicorn, adapted by a2wsgi's thread pool. Django's own ASGI handler would
start extra threads for every request and cost several times as much per request.

Django must be configured first (``gristmill.server.conf.setup`` or
``DJANGO_SETTINGS_MODULE=gristmill.server.settings``).
"""

from typing import Any

from a2wsgi import WSGIMiddleware
from django.core.wsgi import get_wsgi_application

# Django's handler returns an HttpResponse, which is the iterable of bytes WSGI expects; the
# stubs of the two libraries just do not say so.
_django: Any = get_wsgi_application()
application = WSGIMiddleware(_django)
