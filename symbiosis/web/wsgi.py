"""WSGI entry point (``waitress-serve symbiosis.web.wsgi:application`` or gunicorn; docs/app.md)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "symbiosis.web.settings")
application = get_wsgi_application()
