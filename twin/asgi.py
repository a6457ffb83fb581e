# SPDX-License-Identifier: AGPL-3.0-or-later
"""ASGI entry point (Channels plugs in here when live push lands)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twin.settings")
application = get_asgi_application()
