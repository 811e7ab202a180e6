"""A Django settings module for a stand-alone gristmill, built from ``GRISTMILL_*`` variables.

Use ``DJANGO_SETTINGS_MODULE=gristmill.server.settings``; larger deployments import it and
override what they need.
"""

from __future__ import annotations

from typing import Any

from gristmill.server.conf import django_settings
from gristmill.settings import Settings

_values: dict[str, Any] = django_settings(Settings.from_env())

DATABASES = _values["DATABASES"]
INSTALLED_APPS = _values["INSTALLED_APPS"]
MIDDLEWARE = _values["MIDDLEWARE"]
ROOT_URLCONF = _values["ROOT_URLCONF"]
TEMPLATES = _values["TEMPLATES"]
STATIC_URL = _values["STATIC_URL"]
WHITENOISE_USE_FINDERS = _values["WHITENOISE_USE_FINDERS"]
ALLOWED_HOSTS = _values["ALLOWED_HOSTS"]
USE_TZ = _values["USE_TZ"]
TIME_ZONE = _values["TIME_ZONE"]
DEFAULT_AUTO_FIELD = _values["DEFAULT_AUTO_FIELD"]
SECRET_KEY = _values["SECRET_KEY"]
GRISTMILL = _values["GRISTMILL"]
