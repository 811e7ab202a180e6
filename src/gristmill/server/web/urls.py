"""The web pages' URLs (namespace ``gristmill-web``)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from gristmill.server.web import account, datafiles, documents, filtered, operator, sharing, views

app_name = "gristmill-web"

urlpatterns = [
    path("", views.pipeline_list, name="pipelines"),
    path("pipelines/<str:name>/", views.submit_form, name="submit"),
    path("runs/", views.run_list, name="runs"),
    path("operator/", operator.operator_page, name="operator"),
    path("datafiles/", datafiles.datafile_list, name="datafiles"),
    path("account/", account.account_page, name="account"),
    path("datafiles/<str:file_id>/delete/", datafiles.datafile_delete, name="datafile-delete"),
    path("datafiles/<str:file_id>/convert/", documents.datafile_convert, name="datafile-convert"),
    path("documents/", documents.document_search, name="documents"),
    path("runs/shared/", sharing.shared_list, name="shared-runs"),
    path("runs/<str:run_id>/", views.run_page, name="run"),
    path("runs/<str:run_id>/share/", sharing.share_action, name="run-share"),
    path("shared/<str:token>/", sharing.shared_link, name="shared-link"),
    path("settings/", sharing.settings_page, name="settings"),
    re_path(
        r"^runs/(?P<run_id>[^/]+)/(?P<action>cancel|rerun|retry-batches|delete|pin|unpin)/$",
        views.run_action,
        name="run-action",
    ),
    path("runs/<str:run_id>/filtered/", filtered.new_filtered_run, name="run-filtered"),
    path(
        "sign-in/",
        auth_views.LoginView.as_view(template_name="gristmill/sign_in.html"),
        name="sign-in",
    ),
    path("sign-out/", account.SignOutView.as_view(), name="sign-out"),
]
