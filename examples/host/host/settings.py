"""Settings of a small Django site that mounts gristmill under ``/tools/``.

Everything but the ``GRISTMILL_*`` lines and ``"ninja"``/``"gristmill.server"`` in
``INSTALLED_APPS`` is the site's own. See docs/django-app.md.
"""

import os
from pathlib import Path

from gristmill.server.conf import database_config

BASE_DIR = Path(__file__).resolve().parent.parent
# Where this example keeps its database and gristmill's files; the tests point it elsewhere.
DATA_DIR = Path(os.environ.get("HOST_DATA_DIR") or BASE_DIR / "var")

SECRET_KEY = os.environ.get("HOST_SECRET_KEY") or "example-host-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # the API docs page's scripts and styles, served locally
    "gristmill.server",  # gristmill, app label "gristmill"
]

MIDDLEWARE = [
    "gristmill.server.middleware.ChunkedBodyMiddleware",  # first: uploads sent chunked
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "host.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The site's templates come first: templates/gristmill/base.html replaces gristmill's.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# One database for the site and gristmill. On SQLite, gristmill's options (WAL mode, a busy
# timeout, BEGIN IMMEDIATE) let the web server and the workers write at once.
DATABASES = {
    "default": database_config(
        os.environ.get("HOST_DATABASE_URL") or f"sqlite:///{DATA_DIR / 'host.sqlite3'}"
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

STATIC_URL = "static/"
WHITENOISE_USE_FINDERS = True

# The site's own sign-in page (django.contrib.auth's views, templates/registration/).
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# gristmill's settings: the GRISTMILL_* environment variables, as Django settings.
GRISTMILL_DATA_DIR = DATA_DIR / "gristmill"
GRISTMILL_PIPELINES = os.environ.get("GRISTMILL_PIPELINES") or ["gristmill.demo.pipelines"]
GRISTMILL_WORKERS = 2
