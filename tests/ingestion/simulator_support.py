# SPDX-License-Identifier: AGPL-3.0-or-later
"""Helpers for the simulator tests: small fleets of the shipped Huế config under unique names,
and a subscriber on the real broker."""
from __future__ import annotations

import threading
import time
import tomllib
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from django.conf import settings

from ingestion.config import BrokerConfig
from ingestion.simulator.config import parse_fleet

FLEET_TOML = Path(settings.CITY_FIXTURES_DIR) / "hue" / "simulator.toml"
SERIES = Path(settings.BASE_DIR) / "fixtures" / "air" / "hanoi_us_embassy_pm25_2016.csv"
WAIT_S = 60.0  # generous: CI machines are 2 shared cores; polls return as soon as the condition holds


def fleet_data(air: int = 3, water: int = 2, fire: int = 3, **top) -> tuple[dict, str]:
    """The shipped Huế fleet, shrunk, under a unique topic root, layer slugs and device ids."""
    data = tomllib.loads(FLEET_TOML.read_text(encoding="utf-8"))
    tag = uuid.uuid4().hex[:8]
    for name, count in (("air", air), ("water", water), ("fire", fire)):
        data[name]["count"] = count
        data[name]["id_prefix"] = f"t{tag}-{name}"
        data[name]["layer"]["slug"] = f"t{tag}-{name}"
    data.update(topic_root=f"t{tag}/city", **top)
    return data, tag


def fleet_config(**kwargs):
    data, _ = fleet_data(**kwargs)
    return parse_fleet(data, base_dir=FLEET_TOML.parent)


class Collector:
    """Subscribes to a topic root on the real broker and keeps every message."""

    def __init__(self, root: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"simtest-{uuid.uuid4().hex[:10]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{root}/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.ready.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))

    def __enter__(self) -> Collector:
        self.client.connect(*BrokerConfig(url=settings.MQTT_URL).endpoint()[:2])
        self.client.loop_start()
        if not self.ready.wait(WAIT_S):
            pytest.fail(f"no SUBACK from the broker at {settings.MQTT_URL} (run `make services`)")
        return self

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + WAIT_S
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def __exit__(self, *exc) -> None:
        self.client.disconnect()
        self.client.loop_stop()
