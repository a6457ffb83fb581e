# SPDX-License-Identifier: AGPL-3.0-or-later
"""Live feature messages carry the newest reading's values, so the map recolours without reading them."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from ingestion.live.announce import map_values
from tests.ingestion.live_support import HUE_BBOX, live  # noqa: F401
from tests.ingestion.mqtt_support import (air, base_time, broker, devices, in_thread, publisher,  # noqa: F401
                                          start_worker, unique_name, worker_config)

pytestmark = pytest.mark.django_db


def _sensors(devices) -> str:
    return next(layer.slug for layer in devices.layers if layer.kind == "sensor")


def test_a_committed_reading_reaches_the_map_with_its_values(live, devices, start_worker, publisher):
    """Device → MQTT → worker (batch commit) → announcement with values → hub → WebSocket."""
    start_worker(worker_config(devices.root, unique_name(), batch={"flush_interval_ms": 50}))
    client = live.operator(bbox=HUE_BBOX, layers=[_sensors(devices)])
    moment = base_time()
    publisher.publish(devices.topic("sensor", "s3", "air"), air(moment, pm25=87.5, pm10=120))
    message = client.receive_type("feature")
    while message["id"] != "s3" or "values" not in message:      # a liveness message may come first
        message = client.receive_type("feature")
    assert message["values"] == {"pm25": 87.5, "pm10": 120.0}
    assert datetime.fromisoformat(message["observed_at"]) == moment
    assert message["layer"] == _sensors(devices) and message["status"]


def test_a_burst_is_announced_once_per_interval_and_ends_on_its_latest_values(live, devices, settings):
    from ingestion.live.announce import features_read

    settings.LIVE = {**settings.LIVE, "position_interval_s": 1.0, "coalesce_ms": 0}
    client = live.operator(bbox=HUE_BBOX, layers=[_sensors(devices)])
    fid = devices.sensor(4)
    now = datetime.now(timezone.utc)

    def reading(n: int) -> SimpleNamespace:
        return SimpleNamespace(lon=None, lat=None, time=now + timedelta(seconds=n), values={"pm25": float(n)},
                               stream="air")

    started = time.monotonic()
    for n in range(5):       # five batches within the interval
        in_thread(features_read, {fid: reading(n)})
    first = client.receive_type("feature")
    assert first["values"] == {"pm25": 0.0}
    last = client.receive_type("feature", timeout=5)
    assert last["values"] == {"pm25": 4.0}, "the newest reading of the burst, sent when the interval ended"
    assert time.monotonic() - started >= 0.9
    assert client.receives_nothing(0.5)


def test_status_readings_are_left_to_the_status_announcement(live, devices):
    from ingestion.live.announce import features_read

    client = live.operator(bbox=HUE_BBOX, layers=[_sensors(devices)])
    status = SimpleNamespace(lon=None, lat=None, time=datetime.now(timezone.utc),
                             values={"deviceState": "maintenance"}, stream="status")
    in_thread(features_read, {devices.sensor(5): status})
    assert client.receives_nothing(0.5)


def test_only_flat_values_travel_and_at_most_24_of_them():
    assert map_values({"pm25": 12, "alarm": True, "label": "ok", "raw": {"a": 1}, "list": [1], "note": "x" * 65}) \
        == {"pm25": 12, "alarm": True, "label": "ok"}
    assert len(map_values({f"k{i}": i for i in range(40)})) == 24
    assert map_values({}) is None and map_values({"nested": {"a": 1}}) is None
