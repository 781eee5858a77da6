"""Django application config of the symbiosis web app."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "symbiosis.web"
    label = "web"
    verbose_name = "symbiosis programme"
    default_auto_field = "django.db.models.BigAutoField"
