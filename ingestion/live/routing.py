# SPDX-License-Identifier: AGPL-3.0-or-later
"""WebSocket routes and the ASGI lifespan handler for live push (wired in ``twin/asgi.py``)."""
from __future__ import annotations

import logging

from django.urls import path

from ingestion.live.consumers import LiveConsumer

logger = logging.getLogger(__name__)

websocket_urlpatterns = [path("ws/live", LiveConsumer.as_asgi())]


async def lifespan(scope, receive, send) -> None:
    """ASGI lifespan (uvicorn sends it, daphne does not): close the hub and publisher cleanly at shutdown.

    Nothing is started here: the hub starts with the first WebSocket, the
    publisher with the first message, so a process that never needs them
    never connects.
    """
    from ingestion.live import reset

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                reset()
            except Exception:
                logger.exception("live push did not shut down cleanly")
            await send({"type": "lifespan.shutdown.complete"})
            return


__all__ = ["lifespan", "websocket_urlpatterns"]
