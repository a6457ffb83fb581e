# SPDX-License-Identifier: AGPL-3.0-or-later
"""One MQTT publisher per process for live messages (QoS 1, never a silent drop).

Started lazily by the first message (``connect_async`` + ``loop_start``; the
caller never waits for the network). Before the first connection and while
the broker is away, messages wait in a bounded backlog that ``on_connect``
sends, in order, before anything newer; messages already handed to paho are
re-sent by paho after a reconnect (``_messages_reconnect_reset_out``). A
message refused by a full backlog or a full paho queue (both ``max_queued``)
is counted and logged, never dropped silently (frigate's ``publish`` does).
Delivery is confirmed through ``MQTTMessageInfo.is_published()``: messages
the broker has not acknowledged for a while are reported.

paho's own "queued while not connected" (``MQTT_ERR_NO_CONN``) is avoided on
purpose: such a message is re-sent, but its ``is_published()`` raises
forever after, so it could never be confirmed.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import deque

import paho.mqtt.client as mqtt

from ingestion.live.config import LiveConfig
from ingestion.mqtt_client import BufferedClient

logger = logging.getLogger(__name__)

STALL_WARNING_S = 10.0
WARN_EVERY_S = 10.0
MAX_TRACKED = 50_000


class LivePublisher:
    """Publishes JSON text on live topics; thread-safe (paho's publish is)."""

    def __init__(self, cfg: LiveConfig) -> None:
        self.cfg = cfg
        self._host, self._port, self._tls, username, password = cfg.endpoint()
        client_id = f"citytwin-live-pub-{socket.gethostname()[:20]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        if self._tls:
            self.client.tls_set()
        self.client.max_queued_messages_set(cfg.max_queued)
        self.client.max_inflight_messages_set(200)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._started = False
        self._tracked: deque[tuple[float, mqtt.MQTTMessageInfo]] = deque()
        self._backlog: deque[tuple[str, bytes]] = deque()
        self.published = 0
        self.refused = 0
        self._last_warning = 0.0

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        logger.info("live publisher connecting to mqtt://%s:%s", self._host, self._port)
        self.client.connect_async(self._host, self._port, keepalive=30)
        self.client.loop_start()

    def stop(self, timeout: float = 2.0) -> None:
        """Give queued messages ``timeout`` seconds to leave, then disconnect."""
        if not self._started:
            return
        self.flush(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()

    def publish(self, topic: str, text: str) -> bool:
        """Send ``text`` on ``topic`` (QoS 1), or hold it until connected. False when refused (logged)."""
        if not self._started:
            self.start()
        with self._lock:
            if not self.connected.is_set() or self._backlog:
                if len(self._backlog) >= self.cfg.max_queued:
                    return self._refuse(topic, "backlog full while the broker is away")
                self._backlog.append((topic, text.encode()))
                return True
            return self._send(topic, text.encode())

    def _send(self, topic: str, payload: bytes) -> bool:
        """Hand one message to paho (caller holds the lock)."""
        info = self.client.publish(topic, payload, qos=1)
        if info.rc == mqtt.MQTT_ERR_NO_CONN:
            # The connection dropped a moment ago: paho keeps the message and
            # re-sends it after the reconnect, but it cannot be confirmed.
            self.published += 1
            return True
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return self._refuse(topic, mqtt.error_string(info.rc))
        self.published += 1
        self._track(info)
        return True

    def _refuse(self, topic: str, why: str) -> bool:
        self.refused += 1
        self._warn("live publish on %s refused (%s); %d refused so far", topic, why, self.refused)
        return False

    def _track(self, info: mqtt.MQTTMessageInfo) -> None:
        """Remember ``info`` until the broker acknowledges it (caller holds the lock)."""
        now = time.monotonic()
        self._tracked.append((now, info))
        while self._tracked and self._tracked[0][1].is_published():
            self._tracked.popleft()
        if len(self._tracked) > MAX_TRACKED:
            self._tracked = deque(item for item in self._tracked if not item[1].is_published())
        oldest = self._tracked[0][0] if self._tracked else now
        waiting = len(self._tracked)
        if now - oldest > STALL_WARNING_S:
            self._warn("live publisher: the broker has not acknowledged %d messages for %.0f s (connected: %s)",
                       waiting, now - oldest, self.connected.is_set())

    def flush(self, timeout: float) -> bool:
        """Wait until every message published so far is acknowledged; True if all were."""
        deadline = time.monotonic() + timeout
        while self._backlog and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            if self._backlog:
                return False
            pending = [info for _, info in self._tracked]
        for info in pending:
            try:
                info.wait_for_publish(max(0.01, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass
            if not info.is_published():
                return False
        return True

    def _warn(self, message: str, *args) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            logger.warning(message, *args)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.error("broker refused the live publisher: %s", reason_code)
            return
        with self._lock:
            # The backlog goes first, so messages leave in the order they were published.
            held = len(self._backlog)
            while self._backlog:
                topic, payload = self._backlog.popleft()
                self._send(topic, payload)
            self.connected.set()
        logger.info("live publisher connected%s", f"; sent {held} held messages" if held else "")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if reason_code != 0:
            logger.warning("live publisher disconnected (%s); messages are queued until it reconnects", reason_code)


class _Holder:
    """The process's publisher, built on first use; :func:`reset_publisher` clears it (tests, shutdown)."""

    lock = threading.Lock()
    instance: LivePublisher | None = None


def get_publisher() -> LivePublisher:
    from ingestion.live.config import live_config

    with _Holder.lock:
        if _Holder.instance is None:
            _Holder.instance = LivePublisher(live_config())
        return _Holder.instance


def reset_publisher(timeout: float = 2.0) -> None:
    """Stop and forget the process's publisher (the next message builds one from current settings)."""
    with _Holder.lock:
        publisher, _Holder.instance = _Holder.instance, None
    if publisher is not None:
        publisher.stop(timeout)


__all__ = ["LivePublisher", "get_publisher", "reset_publisher"]
