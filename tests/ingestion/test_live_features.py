# SPDX-License-Identifier: AGPL-3.0-or-later
"""Live push of feature state (status, last_seen): per layer, per viewport, coalesced."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.ingestion.live_support import HANOI_BBOX, HUE_BBOX, MqttListener, live, percentiles  # noqa: F401
from tests.ingestion.mqtt_support import (WAIT_S, base_time, broker, devices, in_thread, iso, publisher,  # noqa: F401
                                          start_worker, unique_name, worker_config)
from twin.services import mark_devices_seen

pytestmark = pytest.mark.django_db


def _layer(devices, kind: str) -> str:
    return next(layer.slug for layer in devices.layers if layer.kind == kind)


def _report(devices, n: int, status: str | None = None, moment: datetime | None = None) -> None:
    """A committed liveness write, as the ingestion sink makes it (its on-commit announcement runs for real)."""
    moment = moment or datetime.now(timezone.utc)
    in_thread(mark_devices_seen, {devices.sensor(n): moment}, {devices.sensor(n): status} if status else None)


def test_a_device_status_change_reaches_subscribers_of_its_layer_in_the_viewport_only(live, devices):
    sensors, boats = _layer(devices, "sensor"), _layer(devices, "boat")
    watching = live.operator(bbox=HUE_BBOX, layers=[sensors])
    other_layer = live.operator(bbox=HUE_BBOX, layers=[boats])
    elsewhere = live.operator(bbox=HANOI_BBOX, layers=[sensors])

    _report(devices, 0, "maintenance")

    message = watching.receive_type("feature")
    assert (message["layer"], message["id"], message["fid"], message["status"], message["city"]) == (
        sensors, "s0", devices.sensor(0), "maintenance", "hue")
    assert message["geometry"]["type"] == "Point" and message["last_seen"]
    assert other_layer.receives_nothing() and elsewhere.receives_nothing(0.2)


def test_a_subscribe_with_a_new_viewport_replaces_the_old_one(live, devices):
    sensors = _layer(devices, "sensor")
    client = live.operator(bbox=HANOI_BBOX, layers=[sensors])
    _report(devices, 1, "maintenance")
    assert client.receives_nothing(0.5)

    client.subscribe(bbox=HUE_BBOX, layers=[sensors])     # the map moved to Huế
    _report(devices, 1, "active")

    assert client.receive_type("feature")["status"] == "active"


def test_liveness_alone_is_announced_at_most_once_per_interval_but_a_status_change_always(live, devices, settings):
    settings.LIVE = {**settings.LIVE, "seen_interval_s": 60}
    client = live.operator(bbox=HUE_BBOX, layers=[_layer(devices, "sensor")])
    _report(devices, 2)
    first = client.receive_type("feature")

    _report(devices, 2, moment=datetime.now(timezone.utc) + timedelta(seconds=1))
    assert client.receives_nothing(0.5)

    _report(devices, 2, "inactive")
    assert (first["status"], client.receive_type("feature")["status"]) == ("active", "inactive")


def test_a_burst_for_one_feature_is_coalesced_and_the_latest_state_wins(live, devices, settings):
    settings.LIVE = {**settings.LIVE, "coalesce_ms": 1500}
    client = live.operator(bbox=HUE_BBOX, layers=[_layer(devices, "sensor")])

    for status in ("maintenance", "active", "inactive"):      # within one window
        _report(devices, 3, status)

    # The first committed state goes out at once, then only the latest. The worker may commit the
    # burst in one or two batches (a batch announces its latest state), so the first message is any
    # of the three; what coalescing guarantees is at most two messages, in order, ending on the last.
    published = ["maintenance", "active", "inactive"]
    received = [client.receive_type("feature")["status"]]
    if received[0] != "inactive":
        received.append(client.receive_type("feature")["status"])
    assert received[-1] == "inactive" and len(received) <= 2
    assert [published.index(s) for s in received] == sorted({published.index(s) for s in received})
    assert client.receives_nothing(0.5)


def test_feature_state_is_republished_on_its_mqtt_state_topic(live, devices):
    sensors = _layer(devices, "sensor")
    listener = MqttListener(f"{live.root}/hue/features/#")
    try:
        _report(devices, 4, "maintenance")
        deadline = time.monotonic() + WAIT_S
        while not listener.messages and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        listener.close()

    assert listener.messages, "nothing arrived on the MQTT feature topic"
    topic, payload = listener.messages[0]
    assert topic == f"{live.root}/hue/features/{sensors}/s4/state"
    message = json.loads(payload)
    assert set(message) == {"type", "city", "layer", "id", "fid", "status", "last_seen", "geometry", "published_at"}
    assert (message["type"], message["status"]) == ("feature", "maintenance")


def test_a_device_status_message_through_the_ingestion_worker_reaches_the_map(
        live, devices, start_worker, publisher, capsys):
    """End to end: device → MQTT → worker (batch commit) → announcement → MQTT → hub → WebSocket."""
    start_worker(worker_config(devices.root, unique_name(), batch={"flush_interval_ms": 50}))
    client = live.operator(bbox=HUE_BBOX, layers=[_layer(devices, "sensor")])
    samples = []
    moment = base_time()
    for n, state in enumerate(("maintenance", "inactive", "active", "maintenance", "active")):
        started = time.perf_counter()
        publisher.publish(devices.topic("sensor", "s5", "status"),
                          {"type": "Device", "dateLastValueReported": iso(moment + timedelta(seconds=n)),
                           "deviceState": state})
        message = client.receive_type("feature")
        samples.append((time.perf_counter() - started) * 1000)
        assert (message["id"], message["status"]) == ("s5", state)
        time.sleep(0.15)      # past the coalescing window: every state is its own message
    with capsys.disabled():
        print(f"\nlive push, device publish → WebSocket (worker flush 50 ms, idle): {percentiles(samples)}")


def test_a_moving_boats_new_positions_reach_the_map_and_its_status_keeps_the_latest_position(
        live, devices, start_worker, publisher, settings):
    """Boats move on the map: each new fix through the worker is pushed with the reported point as geometry."""
    settings.LIVE = {**settings.LIVE, "position_interval_s": 0, "coalesce_ms": 0}
    start_worker(worker_config(devices.root, unique_name(), batch={"flush_interval_ms": 20}))
    client = live.operator(bbox=HUE_BBOX, layers=[_layer(devices, "boat")])
    moment = base_time()
    track = [(107.585 + 0.001 * n, 16.465 + 0.0005 * n) for n in range(1, 4)]
    for n, (lon, lat) in enumerate(track):
        publisher.publish(devices.topic("boat", "b0", "position"),
                          {"type": "Vehicle", "observationDateTime": iso(moment + timedelta(seconds=n)),
                           "location": {"type": "Point", "coordinates": [lon, lat]}, "speed": 8.5})
        message = client.receive_type("feature")
        assert (message["id"], message["geometry"]["coordinates"]) == ("b0", [lon, lat])
        assert datetime.fromisoformat(message["position_at"]) == moment + timedelta(seconds=n)

    publisher.publish(devices.topic("boat", "b0", "status"),
                      {"type": "Device", "dateLastValueReported": iso(moment + timedelta(seconds=9)),
                       "deviceState": "maintenance"})
    message = client.receive_type("feature")
    assert (message["status"], message["geometry"]["coordinates"]) == ("maintenance", list(track[-1]))


def test_positions_of_a_moving_feature_are_coalesced_per_interval(live, devices, settings):
    from ingestion.live.announce import features_moved

    settings.LIVE = {**settings.LIVE, "position_interval_s": 60}
    client = live.operator(bbox=HUE_BBOX, layers=[_layer(devices, "boat")])
    boat = devices.ids[("boat", "b0")]
    now = datetime.now(timezone.utc)
    in_thread(features_moved, {boat: (107.586, 16.466, now)})
    assert client.receive_type("feature")["geometry"]["coordinates"] == [107.586, 16.466]
    in_thread(features_moved, {boat: (107.587, 16.467, now + timedelta(seconds=1))})
    assert client.receives_nothing(0.5)
