"""The site as a WSGI application, for gunicorn or any WSGI server."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "host.settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
