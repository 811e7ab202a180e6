"""The URLs of a stand-alone gristmill, mounted at the site's root.

They cannot yet be mounted under a prefix: the API's answers carry absolute paths
(``/runs/...``, ``/api/v1/...``) that the pages and the command-line client follow."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from gristmill.server.api import api
from gristmill.server.health import healthz
from gristmill.server.metrics import metrics

handler400 = "gristmill.server.web.views.bad_request"
handler403 = "gristmill.server.web.views.permission_denied"
handler404 = "gristmill.server.web.views.not_found"
handler500 = "gristmill.server.web.views.server_error"

urlpatterns = [
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="gristmill-healthz"),
    path("metrics", metrics, name="gristmill-metrics"),
    path("", include("gristmill.server.web.urls")),
]
