"""The web pages' URLs (namespace ``gristmill-web``)."""

from __future__ import annotations

from django.urls import path

from gristmill.server.web import views

app_name = "gristmill-web"

urlpatterns = [
    path("", views.pipeline_list, name="pipelines"),
    path("pipelines/<str:name>/", views.submit_form, name="submit"),
    path("runs/<str:run_id>/", views.run_page, name="run"),
]
