# SPDX-License-Identifier: AGPL-3.0-or-later
"""ASGI entry point: Django for HTTP, Channels for ``/ws/live`` (docs/live.md).

Serve with ``twin runserver`` (daphne's, in development), ``daphne
twin.asgi:application`` or ``uvicorn twin.asgi:application``.
"""
import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twin.settings")
# Set Django up (apps, models) before anything below imports a model.
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from ingestion.live.routing import lifespan, websocket_urlpatterns  # noqa: E402
from twin import daphne_requests  # noqa: E402

daphne_requests.install()   # before daphne accepts a connection: no second, unused parse of form bodies

application = ProtocolTypeRouter({
    "http": django_application,
    # Session users come from the cookie (AuthMiddlewareStack); API tokens and the
    # Origin check are the consumer's (ingestion/live/auth.py).
    "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    "lifespan": lifespan,
})

# What is loaded by now (Django, the apps, the models) lives as long as the process: move it out of
# the cyclic collector's reach, so a full collection no longer walks it. Its pauses stop every
# thread, the live hub's too (a full collection of this process was seen taking 400 ms, 24 Nov).
gc.freeze()
