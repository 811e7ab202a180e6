from django.apps import AppConfig


class GristmillConfig(AppConfig):
    name = "gristmill.server"
    label = "gristmill"
    verbose_name = "gristmill"
    default_auto_field = "django.db.models.BigAutoField"
