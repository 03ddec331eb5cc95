"""WSGI entry point: `gunicorn lobby.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lobby.settings")
application = get_wsgi_application()
