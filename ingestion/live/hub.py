# SPDX-License-Identifier: AGPL-3.0-or-later
"""The web process's one MQTT subscriber: live messages in, to every interested WebSocket.

Each web process (daphne, uvicorn worker) starts one hub on the first
``/ws/live`` connection. It subscribes (QoS 1, clean session) to the live
topics of every city and, for each message, parses the JSON once, asks each
connected client's :class:`~ingestion.live.filters.Subscription` whether it
wants it (in the MQTT network thread, so clients that do not want a message
cost no wake-up of their event loop), and hands the message to the wanting
ones on their event loop (``call_soon_threadsafe``).

A reconnect to the broker means messages may have been missed: every client
is then told ``{"type": "resync"}`` and reloads what it shows from the API.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingestion.live.config import LiveConfig
from ingestion.live.filters import LiveMessage, Subscription, parse_message
from ingestion.live.payloads import dumps, now_iso
from ingestion.live.topics import subscriptions, topic_kind
from ingestion.mqtt_client import BufferedClient
from twin.gc_pauses import watch_gc_pauses

logger = logging.getLogger(__name__)

LOG_PAYLOAD_BYTES = 8192


class Subscriber(Protocol):
    """A connected client as the hub sees it (``LiveConsumer``)."""

    loop: asyncio.AbstractEventLoop
    subscription: Subscription

    def deliver(self, message: LiveMessage) -> None:
        """Called on ``loop`` with a message the subscription accepted."""


class LiveHub:
    """Subscribes once, fans out to many (see the module docstring)."""

    def __init__(self, cfg: LiveConfig) -> None:
        self.cfg = cfg
        self._host, self._port, tls, username, password = cfg.endpoint()
        client_id = f"citytwin-live-hub-{socket.gethostname()[:20]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set()
        self.client.reconnect_delay_set(1, 10)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.ready = threading.Event()
        self._lock = threading.Lock()
        self._subscribers: tuple[Subscriber, ...] = ()
        self._connections = 0
        self._started = False
        self.received = 0

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        logger.info("live hub connecting to mqtt://%s:%s", self._host, self._port)
        watch_gc_pauses()   # a pause of the web process delays every client's live messages
        self.client.connect_async(self._host, self._port, keepalive=30, clean_start=True)
        self.client.loop_start()

    def stop(self) -> None:
        if self._started:
            self.client.disconnect()
            self.client.loop_stop()
        self.ready.clear()

    def add(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)

    def remove(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def wait_ready(self, timeout: float) -> bool:
        """True once the broker confirmed the subscription (waits at most ``timeout`` seconds)."""
        if self.ready.is_set():
            return True
        return await asyncio.get_running_loop().run_in_executor(None, self.ready.wait, timeout)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.error("broker refused the live hub: %s", reason_code)
            return
        filters = subscriptions(self.cfg.topic_root)
        result, _ = client.subscribe([(f, SubscribeOptions(qos=1)) for f in filters])
        if result != mqtt.MQTT_ERR_SUCCESS:
            logger.error("live hub subscribe failed: %s", mqtt.error_string(result))
            return
        self._connections += 1
        logger.info("live hub connected, subscribed to %s", ", ".join(filters))
        if self._connections > 1:
            # Clean session: whatever was published while we were away is gone for us.
            self.fan_out(LiveMessage(kind="control", text=dumps(
                {"type": "resync", "reason": "live feed reconnected; reload", "published_at": now_iso()})))

    def _on_connect_fail(self, client, userdata) -> None:
        logger.warning("live hub cannot reach the broker at %s:%s; retrying", self._host, self._port)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            logger.error("broker refused the live hub's subscriptions: %s", ", ".join(refused))
        else:
            self.ready.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.ready.clear()
        if reason_code != 0:
            logger.warning("live hub disconnected (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        """One bad message is logged and skipped; it never stops the feed."""
        self.received += 1
        if not self._anyone_wants(message):
            return
        try:
            parsed = parse_message(message.payload.decode("utf-8"))
        except Exception:
            logger.exception("bad live message on %s: %r", message._topic[:200], message.payload[:LOG_PAYLOAD_BYTES])
            return
        self.fan_out(parsed)

    def _anyone_wants(self, message: mqtt.MQTTMessage) -> bool:
        """Judge by the topic whether any client could want this, before paying for the JSON."""
        try:
            kind = topic_kind(self.cfg.topic_root, message.topic)
        except UnicodeDecodeError:
            kind = None
        subscribers = self._subscribers
        if kind is None:
            return bool(subscribers)      # not ours to judge: let the parser log it
        if kind[0] == "event":
            return any(s.subscription.events for s in subscribers)
        return any(kind[1] in s.subscription.layers for s in subscribers)

    def fan_out(self, message: LiveMessage) -> None:
        """Hand ``message`` to every subscriber that wants it, on its own event loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Subscriber]] = {}
        for subscriber in self._subscribers:
            try:
                wanted = subscriber.subscription.accepts(message)
            except Exception:
                logger.exception("live filter failed; message skipped for one client")
                continue
            if wanted:
                by_loop.setdefault(subscriber.loop, []).append(subscriber)
        for loop, wanting in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, wanting, message)
            except RuntimeError:   # that loop is closed: its clients are gone
                for subscriber in wanting:
                    self.remove(subscriber)


def _deliver(subscribers: Sequence[Subscriber], message: LiveMessage) -> None:
    for subscriber in subscribers:
        try:
            subscriber.deliver(message)
        except Exception:
            logger.exception("live delivery to one client failed")


class _Holder:
    """The process's hub, built on first use; :func:`reset_hub` clears it (tests, shutdown)."""

    lock = threading.Lock()
    instance: LiveHub | None = None


def get_hub() -> LiveHub:
    """The process's hub, started."""
    from ingestion.live.config import live_config

    with _Holder.lock:
        if _Holder.instance is None:
            _Holder.instance = LiveHub(live_config())
        hub = _Holder.instance
    hub.start()
    return hub


def reset_hub() -> None:
    with _Holder.lock:
        hub, _Holder.instance = _Holder.instance, None
    if hub is not None:
        hub.stop()


__all__ = ["LiveHub", "Subscriber", "get_hub", "reset_hub"]
