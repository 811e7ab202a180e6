"""gristmill's URLs, to include under any prefix of a Django site::

    path("tools/", include("gristmill.server.urls"))

Every link gristmill builds (pages, API answers, redirects) follows the prefix
(:mod:`gristmill.server.links`). The stand-alone server mounts them at the root, beside the
admin (:mod:`gristmill.server.root_urls`); a host project keeps its own admin, which lists
gristmill's models."""

from __future__ import annotations

from django.urls import include, path

from gristmill.server.api import api
from gristmill.server.health import healthz
from gristmill.server.metrics import metrics

urlpatterns = [
    path("api/v1/", api.urls),
    path("healthz", healthz, name="gristmill-healthz"),
    path("metrics", metrics, name="gristmill-metrics"),
    path("", include("gristmill.server.web.urls")),
]
