"""Where gristmill is mounted, for the links its pages and API answers carry.

A stand-alone gristmill answers at the site's root; as a Django app it answers under whatever
prefix the host project includes ``gristmill.server.urls`` at (``/tools/``), itself perhaps
under the script name of a site served below a path. Every link gristmill builds starts with
:func:`site_root` or :func:`api_root`, which Django's URL resolver computes from the URLconf in
force and the request's script prefix, so that no link leaves the prefix.

The roots are computed once per script prefix and URLconf (resolving costs microseconds a
link, and an answer may carry dozens), and forgotten when a test changes the URLconf.
"""

from __future__ import annotations

import functools

from django.core.signals import setting_changed
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

SITE_ROOT_NAME = "gristmill-web:pipelines"
"""The URL name of gristmill's first page, which is at the root of its prefix."""
API_ROOT_NAME = "gristmill-api:api-root"
"""The URL name of the REST API's root (django-ninja names it in the API's URL namespace)."""


def site_root() -> str:
    """The path gristmill's pages start with, ending in ``/``: ``/`` when stand-alone,
    ``/tools/`` when mounted there."""
    return _root(SITE_ROOT_NAME, get_script_prefix(), get_urlconf())


def api_root() -> str:
    """The path of the REST API, without a final ``/``: ``/api/v1`` when stand-alone,
    ``/tools/api/v1`` when mounted under ``/tools/``."""
    return _root(API_ROOT_NAME, get_script_prefix(), get_urlconf()).rstrip("/")


def is_api_path(path: str) -> bool:
    """Whether the request path ``path`` is under the REST API (answers there are JSON); never,
    for a site whose URLconf does not include the API."""
    try:
        return path.startswith(f"{api_root()}/")
    except NoReverseMatch:
        return False


def run_page(run_id: str) -> str:
    """The path of the page of the run ``run_id``."""
    return f"{site_root()}runs/{run_id}/"


def api_path(rest: str) -> str:
    """The path of the API resource ``rest`` (``runs/<id>/log``), under :func:`api_root`."""
    return f"{api_root()}/{rest}"


@functools.lru_cache(maxsize=32)
def _root(name: str, script_prefix: str, urlconf: str | None) -> str:
    # reverse() reads the script prefix of the current thread, which is the key's.
    return reverse(name, urlconf=urlconf)


def _forget(*, setting: str, **_: object) -> None:
    if setting in ("ROOT_URLCONF", "FORCE_SCRIPT_NAME"):
        _root.cache_clear()


setting_changed.connect(_forget, dispatch_uid="gristmill.server.links")
