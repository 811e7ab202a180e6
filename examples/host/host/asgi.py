"""The site as an ASGI application, for uvicorn or any ASGI server:
``uvicorn host.asgi:application``. ``gristmill serve`` (with
``DJANGO_SETTINGS_MODULE=host.settings``) serves the same site with gristmill's server."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "host.settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()
