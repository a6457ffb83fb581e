# SPDX-License-Identifier: AGPL-3.0-or-later
"""``/ws/live``: one WebSocket per map, fed by the process's hub.

Protocol (``docs/live.md``). Client → server::

    {"type": "subscribe", "bbox": [minx, miny, maxx, maxy], "layers": ["hue-sensors"], "events": true}
    {"type": "ping"}

Send ``subscribe`` again whenever the map moves; it replaces the previous
one. Server → client: ``hello`` (after authentication), ``subscribed``
(the subscription is active), ``event``, ``feature``, ``resync``, ``pong``
and ``error`` (``{"code", "description"}``, as the HTTP API). Refusals close
the socket with 4401 (not authenticated), 4403 (not allowed) or 4008 (the
client fell too far behind).
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from ingestion.live.auth import CLOSE_FORBIDDEN, Rights, authenticate_websocket
from ingestion.live.config import live_config
from ingestion.live.filters import InvalidSubscription, LiveMessage, Subscription, parse_subscribe
from ingestion.live.hub import LiveHub, get_hub
from ingestion.live.outbox import Outbox
from ingestion.live.payloads import dumps

logger = logging.getLogger(__name__)

MAX_CLIENT_MESSAGE = 64 * 1024
CLOSE_TOO_SLOW = 4008


def readable_slugs(user, slugs: frozenset[str]) -> frozenset[str]:
    """Those of ``slugs`` that ``user`` may read (an unreadable layer looks like a missing one)."""
    from layers.access import readable_layers

    return frozenset(readable_layers(user).filter(slug__in=sorted(slugs)).values_list("slug", flat=True))


class LiveConsumer(AsyncWebsocketConsumer):
    """Authenticates, keeps the client's subscription, forwards what the hub delivers."""

    hub: LiveHub | None = None
    outbox: Outbox | None = None
    rights: Rights | None = None
    subscription: Subscription = Subscription()

    async def connect(self) -> None:
        auth = await authenticate_websocket(self.scope)
        # Accept before refusing: a browser sees close codes and messages, never a handshake's HTTP status.
        await self.accept(subprotocol=auth.subprotocol)
        if auth.refusal is not None:
            refusal = auth.refusal
            await self._refuse(refusal.code, refusal.description, refusal.close_code)
            return
        self.user, self.rights = auth.user, auth.rights
        cfg = live_config()
        self.ready_timeout_s = cfg.ready_timeout_s
        self.loop = asyncio.get_running_loop()
        self.outbox = Outbox(self._send_text, cfg.coalesce_ms / 1000, cfg.max_pending)
        self._sender = asyncio.create_task(self.outbox.run(), name="live-outbox")
        self._closing = False
        self.hub = get_hub()
        self.hub.add(self)
        await self.send(text_data=dumps({"type": "hello", "user": self.user.get_username(), "auth": auth.method,
                                         "events": self.rights.events}))

    async def disconnect(self, code: int) -> None:
        if self.hub is not None:
            self.hub.remove(self)
        sender = getattr(self, "_sender", None)
        if sender is not None:
            sender.cancel()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.outbox is None:     # refused: ignore whatever arrives before the close
            return
        data = await self._decode(text_data)
        if data is None:
            return
        kind = data.get("type")
        if kind == "subscribe":
            await self._subscribe(data)
        elif kind == "ping":
            await self.send(text_data=dumps({"type": "pong", **({"id": data["id"]} if "id" in data else {})}))
        else:
            await self._error("InvalidParameterValue", "type must be 'subscribe' or 'ping'")

    async def _decode(self, text_data: str | None) -> dict[str, Any] | None:
        """The client's JSON object, or None after telling the client what was wrong."""
        if text_data is None or len(text_data) > MAX_CLIENT_MESSAGE:
            await self._error("InvalidParameterValue", "send JSON text messages up to 64 KiB")
            return None
        try:
            data = json.loads(text_data)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            await self._error("InvalidParameterValue", "a message must be a JSON object")
            return None
        return data

    async def _subscribe(self, data: dict[str, Any]) -> None:
        try:
            wanted = parse_subscribe(data)
        except InvalidSubscription as exc:
            await self._error(exc.code, str(exc))
            return
        if wanted.events and not self.rights.events:
            await self._error("PermissionDenied", "Your role does not allow reading events.")
            return
        if wanted.layers:
            readable = await database_sync_to_async(readable_slugs)(self.user, wanted.layers)
            missing = sorted(wanted.layers - readable)
            if missing:
                await self._error("InvalidParameterValue", f"unknown layer(s): {', '.join(missing)}")
                return
        self.subscription = wanted
        live = await self.hub.wait_ready(self.ready_timeout_s)
        await self.send(text_data=dumps({"type": "subscribed", "events": wanted.events,
                                         "layers": sorted(wanted.layers), "bbox": wanted.bbox, "live": live}))

    def deliver(self, message: LiveMessage) -> None:
        """Called by the hub on this consumer's loop."""
        if self.outbox is None or self._closing:
            return
        if not self.outbox.put(message):
            self._closing = True
            logger.warning("live client %s is %d messages behind: closing it", self.user.get_username(),
                           self.outbox.pending)
            asyncio.ensure_future(self._refuse("TooSlow", "The client fell too far behind; reconnect and reload.",
                                               CLOSE_TOO_SLOW))

    async def _send_text(self, text: str) -> None:
        await self.send(text_data=text)

    async def _error(self, code: str, description: str) -> None:
        await self.send(text_data=dumps({"type": "error", "code": code, "description": description}))

    async def _refuse(self, code: str, description: str, close_code: int = CLOSE_FORBIDDEN) -> None:
        await self._error(code, description)
        await self.close(code=close_code)


__all__ = ["LiveConsumer", "readable_slugs"]
