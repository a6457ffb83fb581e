# SPDX-License-Identifier: AGPL-3.0-or-later
"""WSGI entry point: ``gunicorn twin.wsgi:application`` (threaded workers serve sync views in parallel)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twin.settings")
application = get_wsgi_application()
