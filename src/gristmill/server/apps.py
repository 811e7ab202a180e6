from django.apps import AppConfig
from django.core.signals import setting_changed


class GristmillConfig(AppConfig):
    """gristmill as a Django app: add ``"gristmill.server"`` to ``INSTALLED_APPS`` (see
    docs/django-app.md). Its label, ``gristmill``, names its tables and migrations."""

    name = "gristmill.server"
    label = "gristmill"
    verbose_name = "gristmill"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from gristmill.server import checks  # noqa: F401 - registers the system checks
        from gristmill.server.conf import forget_project_settings

        # Tests that override a project's GRISTMILL_* settings see them read again.
        setting_changed.connect(forget_project_settings, dispatch_uid="gristmill.conf")
