"""The URLs of a stand-alone gristmill. A Django project that adds gristmill to its
``INSTALLED_APPS`` can include the same patterns under any prefix."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from gristmill.server.api import api
from gristmill.server.health import healthz

handler400 = "gristmill.server.web.views.bad_request"
handler403 = "gristmill.server.web.views.csrf_failure"
handler404 = "gristmill.server.web.views.not_found"
handler500 = "gristmill.server.web.views.server_error"

urlpatterns = [
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="gristmill-healthz"),
    path("", include("gristmill.server.web.urls")),
]
