# SPDX-License-Identifier: AGPL-3.0-or-later
"""A small asyncio client for ``/ws/live`` on a running server (benchmarks, scripts, smoke tests).

::

    async with LiveClient("ws://127.0.0.1:8000/ws/live", token=TOKEN) as live:
        await live.subscribe(bbox=[107.5, 16.4, 107.7, 16.55], layers=["hue-sensors"], events=True)
        async for message in live:
            print(message.received_at, message.data["type"])

Or, as a plain async iterator: ``async for m in live_messages(url, token=..., events=True): ...``.
Each message carries the wall-clock time it was read (``time.time()``),
next to the server's ``published_at``, for latency measurements.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from ingestion.live.auth import APP_PROTOCOL, TOKEN_PROTOCOL_PREFIX

logger = logging.getLogger(__name__)


class LiveRefused(Exception):
    """The server answered ``error`` (refused credentials, a bad subscription ...)."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code, self.description = code, description


@dataclass(frozen=True, slots=True)
class Received:
    data: dict[str, Any]
    received_at: float      # time.time() when read off the socket


class LiveClient:
    """One connection to ``/ws/live``; authenticates with an API token through the subprotocol."""

    def __init__(self, url: str, *, token: str | None = None, open_timeout: float = 10) -> None:
        self.url, self._token, self._open_timeout = url, token, open_timeout
        self._ws: ClientConnection | None = None
        self._buffer: deque[Received] = deque()
        self.hello: dict[str, Any] | None = None

    async def __aenter__(self) -> LiveClient:
        protocols = [APP_PROTOCOL] + ([TOKEN_PROTOCOL_PREFIX + self._token] if self._token else [])
        self._ws = await connect(self.url, subprotocols=protocols, open_timeout=self._open_timeout, proxy=None,
                                 compression=None, max_size=16 * 1024 * 1024)
        first = await self._read(self._open_timeout)
        if first.data.get("type") != "hello":
            await self.close()
            raise LiveRefused(first.data.get("code", "Unexpected"), first.data.get("description", str(first.data)))
        self.hello = first.data
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def _read(self, timeout: float | None) -> Received:
        text = await asyncio.wait_for(self._ws.recv(), timeout)
        return Received(json.loads(text), time.time())

    async def subscribe(self, *, bbox: Sequence[float] | None = None, layers: Sequence[str] = (),
                        events: bool = False, timeout: float = 10) -> dict[str, Any]:
        """Send a subscription and wait for ``subscribed`` (live messages read meanwhile are kept)."""
        await self._ws.send(json.dumps({"type": "subscribe", "bbox": list(bbox) if bbox else None,
                                        "layers": list(layers), "events": events}))
        deadline = time.monotonic() + timeout
        while True:
            message = await self._read(max(0.0, deadline - time.monotonic()))
            kind = message.data.get("type")
            if kind == "subscribed":
                return message.data
            if kind == "error":
                raise LiveRefused(message.data.get("code", ""), message.data.get("description", ""))
            self._buffer.append(message)

    async def receive(self, timeout: float | None = None) -> Received:
        """The next message (``TimeoutError`` after ``timeout`` seconds)."""
        if self._buffer:
            return self._buffer.popleft()
        return await self._read(timeout)

    def __aiter__(self) -> AsyncIterator[Received]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Received]:
        while True:
            yield await self.receive()


async def live_messages(url: str, *, token: str | None = None, bbox: Sequence[float] | None = None,
                        layers: Sequence[str] = (), events: bool = True) -> AsyncIterator[Received]:
    """Connect, subscribe, and yield every message until the caller stops iterating."""
    async with LiveClient(url, token=token) as live:
        await live.subscribe(bbox=bbox, layers=layers, events=events)
        async for message in live:
            yield message


__all__ = ["LiveClient", "LiveRefused", "Received", "live_messages"]
