"""The site's URLs: its own home page and sign-in, its admin, and gristmill under /tools/."""

from django.contrib import admin
from django.urls import include, path

from host import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),  # login, logout, password pages
    path("admin/", admin.site.urls),  # lists gristmill's runs, data files, tokens too
    path("tools/", include("gristmill.server.urls")),
]
