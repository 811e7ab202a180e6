"""Django system checks of a site that has gristmill as one of its apps (``manage.py check``,
and every management command): the mistakes that would otherwise show only at the first
request or the first run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.urls import NoReverseMatch

from gristmill.errors import ConfigurationError


@checks.register()
def gristmill_settings_check(
    *, app_configs: Sequence[AppConfig] | None, databases: Sequence[str] | None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """The site's ``GRISTMILL_*`` settings can be read (gristmill.E001)."""
    from gristmill.server.conf import current_settings

    try:
        current_settings()
    except ConfigurationError as error:
        return [
            checks.Error(
                str(error),
                hint="See the GRISTMILL_* settings in gristmill's docs/settings.md.",
                id="gristmill.E001",
            )
        ]
    return []


@checks.register(deploy=False)
def gristmill_urls_check(
    *, app_configs: Sequence[AppConfig] | None, databases: Sequence[str] | None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """gristmill's URLs are in the site's URLconf (gristmill.W001), and ``ninja`` is installed
    for the API docs page (gristmill.W002)."""
    from gristmill.server.links import api_root, site_root

    found: list[checks.CheckMessage] = []
    try:
        site_root()
        api_root()
    except NoReverseMatch:
        found.append(
            checks.Warning(
                "gristmill's pages and API are not in the site's URLs",
                hint='Add path("tools/", include("gristmill.server.urls")) to ROOT_URLCONF.',
                id="gristmill.W001",
            )
        )
    if "ninja" not in settings.INSTALLED_APPS:
        found.append(
            checks.Warning(
                "the API docs page needs django-ninja's static files",
                hint='Add "ninja" to INSTALLED_APPS.',
                id="gristmill.W002",
            )
        )
    return found
