"""The URLconf of a stand-alone gristmill (``ROOT_URLCONF``): gristmill at the site's root, the
admin under ``/admin/``, and the error pages in gristmill's style."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

handler400 = "gristmill.server.web.views.bad_request"
handler403 = "gristmill.server.web.views.permission_denied"
handler404 = "gristmill.server.web.views.not_found"
handler500 = "gristmill.server.web.views.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("gristmill.server.urls")),
]
