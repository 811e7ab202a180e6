"""The Django settings django-stubs loads while mypy checks the code (``[tool.django-stubs]``).

The same apps and models as :mod:`gristmill.server.settings`, but read from no ``GRISTMILL_*``
variable and with a fixed secret key: a type check must not create ``gristmill-data/`` and its
secret key in the checkout, as importing the stand-alone settings module does.
"""

from __future__ import annotations

from gristmill.server.conf import django_settings
from gristmill.settings import Settings

globals().update(django_settings(Settings.from_env({}, secret_key="type-checking-only")))
