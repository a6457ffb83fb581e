# SPDX-License-Identifier: AGPL-3.0-or-later
"""Camera messages on MQTT: ``{root}/{city}/camera/{id}/detection`` and ``…/counts``.

The topics come from ingestion's one topic table, so the ingestion worker
subscribes to exactly what is published here. QoS 1; a publish that the
client refuses is logged and counted, never silently dropped.
"""
from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt

from ingestion.topics import TopicScheme

logger = logging.getLogger(__name__)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Publisher:
    """Something that takes (camera id, stream, payload)."""

    def publish(self, device_id: str, stream: str, payload: dict[str, Any]) -> None:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        pass


class MemoryPublisher(Publisher):
    """Keeps messages in a list (the benchmark's and unit tests' sink; no broker)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, device_id: str, stream: str, payload: dict[str, Any]) -> None:
        self.messages.append((device_id, stream, payload))


class MqttPublisher(Publisher):
    def __init__(self, url: str, *, city: str, root: str = "city", client_id: str | None = None) -> None:
        self.scheme = TopicScheme(root=root)
        self.city = city
        self.failed = 0
        parsed = urlparse(url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "",
                                  protocol=mqtt.MQTTv5)
        if parsed.username:
            self.client.username_pw_set(parsed.username, parsed.password)
        if parsed.scheme in ("mqtts", "ssl"):
            self.client.tls_set()
        self._connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.reconnect_delay_set(1, 30)
        self.client.connect_async(parsed.hostname or "127.0.0.1", parsed.port or 1883, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            logger.warning("MQTT broker %s not reachable yet; messages are queued by paho", parsed.hostname)

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            logger.error("MQTT connect refused: %s", reason_code)
            return
        self._connected.set()

    def publish(self, device_id: str, stream: str, payload: dict[str, Any]) -> None:
        topic = self.scheme.device_topic(self.city, "camera", device_id, stream)
        info = self.client.publish(topic, json.dumps(payload, separators=(",", ":")), qos=1)
        self._last = info
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.failed += 1
            logger.error("publish to %s refused (rc=%s)", topic, info.rc)

    def close(self, timeout_s: float = 10.0) -> None:
        last = getattr(self, "_last", None)
        if last is not None and self._connected.is_set():
            try:
                last.wait_for_publish(timeout_s)   # QoS 1 in order: the last one acknowledged means all were
            except (RuntimeError, ValueError):
                logger.warning("closing with unacknowledged camera messages")
        self.client.loop_stop()
        self.client.disconnect()


__all__ = ["MemoryPublisher", "MqttPublisher", "Publisher", "iso_utc"]
