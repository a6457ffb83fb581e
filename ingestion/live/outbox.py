# SPDX-License-Identifier: AGPL-3.0-or-later
"""One client's outgoing queue: events in order, feature states coalesced.

A software-rendered map in an operations centre cannot draw a thousand
updates a second (``docs/live.md``), and a sensor's state a tenth of a
second old is already stale. So feature messages are throttled per feature
(key ``("f", layer, id)``): the first goes out at once, later ones within
the window wait for its end and only the latest is sent. Events are never
merged: each created/updated/transition is delivered, in order, and ahead
of any feature update still waiting (an alarm must not queue behind a
thousand sensor heartbeats). A feature message that replaces a waiting one
keeps the reading (``values``, ``observed_at``) the waiting one carried if
it has none of its own: a status change right after a reading must not wipe
the value the map colours the sensor by.

The backlog is bounded: a client that falls ``max_pending`` messages behind
is reported through :meth:`put` returning False and the consumer closes it
(it reconnects and reloads), instead of the server buffering without end.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from ingestion.live.filters import LiveMessage
from ingestion.live.payloads import dumps

logger = logging.getLogger(__name__)

PRUNE_AT = 1024
READING_FIELDS = ("values", "observed_at")


def carry_reading(older: str, newer: str) -> str:
    """``newer``, with ``older``'s reading when ``newer`` has none (see the module docstring).

    >>> carry_reading('{"id": 1, "status": "active", "values": {"pm25": 80}, "observed_at": "t"}',
    ...               '{"id": 1, "status": "offline"}')
    '{"id":1,"status":"offline","values":{"pm25":80},"observed_at":"t"}'
    """
    if '"values"' not in older:       # the usual case, decided without parsing
        return newer
    old, new = json.loads(older), json.loads(newer)
    if "values" not in old or "values" in new:
        return newer
    new.update({name: old[name] for name in READING_FIELDS if name in old})
    return dumps(new)


class Outbox:
    def __init__(self, send: Callable[[str], Awaitable[None]], window_s: float, max_pending: int) -> None:
        self._send = send
        self.window_s = window_s
        self.max_pending = max_pending
        self._urgent: deque[str] = deque()            # events and control messages, in order
        self._pending: dict[tuple, str] = {}          # feature key → latest text
        self._last_sent: dict[tuple, float] = {}
        self._wake = asyncio.Event()
        self.sent = 0

    def put(self, message: LiveMessage) -> bool:
        """Queue ``message`` (latest wins per feature); False when the client is too far behind."""
        coalesce = message.key is not None and self.window_s > 0
        if self.pending >= self.max_pending and not (coalesce and message.key in self._pending):
            return False
        if coalesce:
            waiting = self._pending.get(message.key)
            self._pending[message.key] = message.text if waiting is None else carry_reading(waiting, message.text)
        else:
            self._urgent.append(message.text)
        self._wake.set()
        return True

    @property
    def pending(self) -> int:
        return len(self._urgent) + len(self._pending)

    async def run(self) -> None:
        """The sender loop (one task per client, cancelled when it disconnects)."""
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            if not self.pending:
                await self._wake.wait()
                continue
            delay = await self._send_due(loop)
            if delay > 0 and not self._wake.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    async def _send_urgent(self) -> None:
        while self._urgent:
            await self._send(self._urgent.popleft())
            self.sent += 1

    async def _send_due(self, loop: asyncio.AbstractEventLoop) -> float:
        """Send what is due; return how long until the next throttled message is (0: look again now)."""
        await self._send_urgent()
        now = loop.time()
        due: list[tuple] = []
        wait = self.window_s
        for key in self._pending:
            last = self._last_sent.get(key)
            if last is None or now - last >= self.window_s:
                due.append(key)
            else:
                wait = min(wait, self.window_s - (now - last))
        if len(self._last_sent) > PRUNE_AT:
            self._last_sent = {k: t for k, t in self._last_sent.items() if now - t < self.window_s}
        for key in due:
            await self._send_urgent()       # an event that arrived meanwhile goes first
            text = self._pending.pop(key)
            self._last_sent[key] = now
            await self._send(text)
            self.sent += 1
        return 0.0 if due else wait


__all__ = ["Outbox"]
