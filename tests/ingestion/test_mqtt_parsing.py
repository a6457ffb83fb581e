# SPDX-License-Identifier: AGPL-3.0-or-later
"""Parsing and batching without a broker: messages fired straight into the adapter's handler.

``fire_message`` plays the part of Home Assistant's ``async_fire_mqtt_message``:
the MQTT adapter's own ``on_message`` runs on a hand-made message, and the
resulting delivery goes through the same device/extent resolution as live
traffic. The database is the real PostGIS (per-test transaction).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt
import psycopg
import pytest
from shapely.geometry import Point

from ingestion.adapters.mqtt import MqttAdapter
from ingestion.config import load_config
from ingestion.devices import DeviceDirectory
from ingestion.messages import Rejected
from ingestion.parsing import ParsedMessage
from ingestion.sink import Delivery, Sink
from tests.twin.factories import NGO_MON, make_layer, sensor_row
from twin.errors import ImportRejected
from twin.models import City, Feature, Observation
from twin.services import FeatureRow, write_features

ROOT = "unit/city"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.isoformat()


@pytest.fixture
def cfg():
    return load_config(None, topics={"root": ROOT}, worker={"name": "unit"})


@pytest.fixture
def adapter(cfg):
    deliveries: list[Delivery] = []
    handler = MqttAdapter(cfg, deliveries.append)
    handler.delivered = deliveries
    return handler


@pytest.fixture
def registered(db):
    """A sensor ``s0`` and a boat ``b0`` registered in Huế."""
    hue = City.objects.get(slug="hue")
    sensors, boats = make_layer("sensor", city=hue), make_layer("boat", city=hue)
    write_features(sensors, [sensor_row("s0", *NGO_MON)])
    write_features(boats, [FeatureRow(external_id="b0", geom=Point(107.585, 16.465), properties={"mmsi": "574000123"})])
    return {"s0": Feature.objects.get(layer=sensors).pk, "b0": Feature.objects.get(layer=boats).pk}


def fire_message(adapter: MqttAdapter, topic: str, payload, qos: int = 1) -> ParsedMessage | Rejected:
    """Run the adapter's on_message on one message; return what it handed to the sink."""
    message = mqtt.MQTTMessage(mid=1, topic=topic.encode())
    message.payload = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    message.qos = qos
    adapter._on_message(adapter.client, None, message)
    return adapter.delivered.pop().message


def outcome(adapter: MqttAdapter, topic: str, payload):
    """The whole parse path: adapter, then device and extent."""
    parsed = fire_message(adapter, topic, payload)
    return parsed if isinstance(parsed, Rejected) else DeviceDirectory().resolve(parsed)


def air(**values):
    return {"dateObserved": iso(NOW - timedelta(minutes=5)), **values}


def position(lon, lat):
    return {"observationDateTime": iso(NOW - timedelta(minutes=5)), "location": {"type": "Point",
                                                                               "coordinates": [lon, lat]}}


SENSOR = f"{ROOT}/hue/sensor/s0/air"
BOAT = f"{ROOT}/hue/boat/b0/position"

GARBAGE = [
    pytest.param(SENSOR, b'{"dateObserved": ', "malformed_json", "Expecting value", id="truncated-json"),
    pytest.param(SENSOR, b"\xff\xfe\x00{", "malformed_json", "utf-8", id="not-utf8"),
    pytest.param(SENSOR, b'{"dateObserved": "2026-01-01T00:00:00Z", "pm25": NaN}', "malformed_json", "NaN",
                 id="nan"),
    pytest.param(SENSOR, b'{"pm25": -Infinity}', "malformed_json", "Infinity", id="infinity"),
    pytest.param(SENSOR, b"[" * 50_000, "malformed_json", "recursion", id="deeply-nested"),
    pytest.param(SENSOR, f'{{"dateObserved": "{iso(NOW)}", "pm25": 1e999}}'.encode(), "invalid_payload",
                 "finite number", id="overflow-1e999"),
    pytest.param(SENSOR, air(pm25="twelve"), "invalid_payload", "pm25: Input should be a valid number",
                 id="wrong-type"),
    pytest.param(SENSOR, air(pm25="12"), "invalid_payload", "pm25: Input should be a valid number",
                 id="number-as-string"),
    pytest.param(SENSOR, air(pm25=True), "invalid_payload", "pm25", id="bool-as-number"),
    pytest.param(SENSOR, air(pm2_5=3), "invalid_payload", "pm2_5: Extra inputs are not permitted",
                 id="unknown-key"),
    pytest.param(SENSOR, {"pm25": 3}, "invalid_payload", "dateObserved: Field required", id="missing-time"),
    pytest.param(SENSOR, {"dateObserved": "2026-01-01T00:00:00", "pm25": 3}, "invalid_payload",
                 "timezone", id="time-without-zone"),
    pytest.param(SENSOR, air(pm25=-4), "invalid_payload", "greater than or equal to 0", id="negative-pm25"),
    pytest.param(SENSOR, {"dateObserved": iso(NOW + timedelta(days=1))}, "time_out_of_range", "future",
                 id="future-time"),
    pytest.param(SENSOR, {"dateObserved": "2001-01-01T00:00:00Z"}, "time_out_of_range", "older", id="ancient-time"),
    pytest.param(SENSOR, [], "invalid_payload", "1 to", id="empty-list"),
    pytest.param(SENSOR, 42, "invalid_payload", "valid dictionary", id="scalar"),
    pytest.param(SENSOR, [air(pm25=1), air(pm25="x")], "invalid_payload", "[1].pm25", id="one-bad-in-batch"),
    pytest.param(BOAT, position(0, 0), "out_of_extent", "(0, 0)", id="null-island"),
    pytest.param(BOAT, position(105.85, 21.03), "out_of_extent", "outside the extent", id="hanoi-not-hue"),
    pytest.param(BOAT, position(16.465, 107.585), "invalid_payload", "coordinates", id="swapped-lon-lat"),
    pytest.param(BOAT, {"observationDateTime": iso(NOW)}, "invalid_payload", "location: Field required",
                 id="position-without-location"),
    pytest.param(f"{ROOT}/hue/sensor/s0/radio", air(), "unknown_stream", "no stream 'radio'", id="unknown-stream"),
    pytest.param(f"{ROOT}/hue/sensor/ghost/air", air(), "unknown_device", "ghost", id="unknown-device"),
    pytest.param(f"{ROOT}/hcm/sensor/s0/air", air(), "unknown_device", "city 'hcm'", id="unknown-city"),
    pytest.param(f"{ROOT}/hue/boat/s0/position", position(107.585, 16.465), "unknown_device", "boat 's0'",
                 id="right-id-wrong-kind"),
]


@pytest.mark.parametrize("topic, payload, reason, detail", GARBAGE)
def test_garbage_is_refused_with_its_reason(adapter, registered, topic, payload, reason, detail):
    result = outcome(adapter, topic, payload)
    assert isinstance(result, Rejected), result
    assert result.reason == reason
    assert detail.lower() in result.details["detail"].lower()


def test_oversized_payload_keeps_its_first_bytes_and_true_size(adapter, cfg):
    payload = b'{"x": "' + b"a" * (cfg.limits.max_payload_bytes + 10) + b'"}'
    result = fire_message(adapter, SENSOR, payload)
    assert (result.reason, result.details["size"]) == ("oversized", len(payload))
    assert result.payload == payload[:cfg.limits.keep_bytes]


def test_a_valid_reading_becomes_a_reading_of_its_feature(adapter, registered):
    [reading] = outcome(adapter, SENSOR, air(pm25=12, pm10=20, relativeHumidity=0.8))
    assert (reading.feature_id, reading.kind, reading.stream, reading.city) == (registered["s0"], "sensor", "air",
                                                                                "hue")
    assert reading.values == {"pm25": 12.0, "pm10": 20.0, "relativeHumidity": 0.8}
    assert reading.time == NOW - timedelta(minutes=5) and reading.time.tzinfo is not None


def test_a_position_inside_the_city_keeps_its_coordinates(adapter, registered):
    [reading] = outcome(adapter, BOAT, position(107.585, 16.465))
    assert (reading.lon, reading.lat, reading.values) == (107.585, 16.465, {})


def test_a_redelivered_message_gives_the_same_message_ids(adapter, registered):
    first = outcome(adapter, SENSOR, [air(pm25=1), air(pm25=2)])
    again = outcome(adapter, SENSOR, [air(pm25=1), air(pm25=2)])
    assert [r.message_id for r in first] == [r.message_id for r in again]
    assert first[0].message_id != first[1].message_id


def test_topics_outside_the_scheme_are_unknown_topics(adapter):
    assert fire_message(adapter, f"{ROOT}/hue/sensor/s0", air()).reason == "unknown_topic"
    assert fire_message(adapter, "elsewhere/hue/sensor/s0/air", air()).reason == "unknown_topic"


def _delivery(adapter, acks: list, tag: str, topic: str, payload) -> Delivery:
    parsed = fire_message(adapter, topic, payload)
    return Delivery(parsed, lambda: acks.append(tag))


def test_messages_are_acknowledged_only_after_the_batch_commits(adapter, registered, cfg, monkeypatch):
    acks: list[str] = []
    sink = Sink(cfg.batch, DeviceDirectory())
    sink._add(_delivery(adapter, acks, "good", SENSOR, air(pm25=1)))
    sink._add(_delivery(adapter, acks, "garbage", SENSOR, b"{"))
    real = __import__("ingestion.sink", fromlist=["record_observations"]).record_observations

    def unreachable(rows):
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("ingestion.sink.record_observations", unreachable)
    with pytest.raises(psycopg.OperationalError):
        sink.flush()
    assert acks == []                                   # nothing acknowledged: the broker keeps them
    assert not Observation.objects.filter(feature_id=registered["s0"]).exists()

    monkeypatch.setattr("ingestion.sink.record_observations", real)
    report = sink.flush()
    assert acks == ["good", "garbage"]                  # in arrival order, after the commit
    assert (report.inserted, report.dead_letters) == (1, 1)


def test_a_batch_the_database_refuses_is_stored_message_by_message(adapter, registered, cfg, monkeypatch):
    acks: list[str] = []
    sink = Sink(cfg.batch, DeviceDirectory())
    sink._add(_delivery(adapter, acks, "a", SENSOR, air(pm25=1)))
    sink._add(_delivery(adapter, acks, "b", BOAT, position(107.585, 16.465)))
    real = __import__("ingestion.sink", fromlist=["record_observations"]).record_observations

    def refuse_boats(rows):
        if any(row.feature_id == registered["b0"] for row in rows):
            raise ImportRejected("refused for the test")
        return real(rows)

    monkeypatch.setattr("ingestion.sink.record_observations", refuse_boats)
    report = sink.flush()
    assert acks == ["a", "b"]
    assert (report.inserted, report.dead_letters) == (1, 1)
    from ingestion.models import DeadLetter
    assert DeadLetter.objects.get(topic=BOAT).reason == "storage_error"


def test_a_retired_device_is_refused_like_an_unknown_one(adapter, registered):
    Feature.objects.filter(pk=registered["s0"]).update(status="retired")
    result = outcome(adapter, SENSOR, air(pm25=1))
    assert (result.reason, "retired" in result.details["detail"]) == ("unknown_device", True)


def test_a_device_id_held_by_two_layers_of_the_city_is_refused_as_ambiguous(adapter, registered):
    other = make_layer("sensor", city=City.objects.get(slug="hue"))
    write_features(other, [sensor_row("s0", *NGO_MON)])
    result = outcome(adapter, SENSOR, air(pm25=1))
    assert (result.reason, "ambiguous" in result.details["detail"]) == ("unknown_device", True)


def test_last_seen_only_moves_forward_and_a_reporting_offline_device_becomes_active(registered):
    from twin.services import mark_devices_seen

    sensor, boat = registered["s0"], registered["b0"]
    Feature.objects.filter(pk=sensor).update(status="offline")
    Feature.objects.filter(pk=boat).update(status="retired")
    mark_devices_seen({sensor: NOW, boat: NOW})
    mark_devices_seen({sensor: NOW - timedelta(hours=1)})            # a late, buffered reading
    assert Feature.objects.get(pk=sensor).last_seen == NOW
    assert Feature.objects.get(pk=sensor).status == "active"
    assert Feature.objects.get(pk=boat).status == "retired"            # an operator decision stays


def test_a_device_may_report_maintenance_but_not_retire_itself(registered):
    from twin.errors import InvalidInput
    from twin.services import mark_devices_seen

    mark_devices_seen({registered["s0"]: NOW}, {registered["s0"]: "maintenance"})
    assert Feature.objects.get(pk=registered["s0"]).status == "maintenance"
    with pytest.raises(InvalidInput):
        mark_devices_seen({registered["s0"]: NOW}, {registered["s0"]: "retired"})


def test_a_degraded_device_stays_degraded_while_it_reports_until_it_says_active(registered):
    from twin.services import mark_devices_seen

    sensor = registered["s0"]
    mark_devices_seen({sensor: NOW}, {sensor: "degraded"})             # a camera whose stream stalls
    mark_devices_seen({sensor: NOW + timedelta(seconds=5)})            # its counts keep coming
    assert Feature.objects.get(pk=sensor).status == "degraded"
    mark_devices_seen({sensor: NOW + timedelta(seconds=10)}, {sensor: "active"})
    assert Feature.objects.get(pk=sensor).status == "active"


def test_a_broken_broker_url_is_reported_by_the_system_check(settings):
    from ingestion.checks import check_ingest_config

    settings.MQTT_URL = "http://broker"
    [warning] = check_ingest_config()
    assert warning.id == "ingestion.W001" and "mqtt://host:port" in warning.msg
    settings.MQTT_URL = "mqtt://127.0.0.1:1883"
    assert check_ingest_config() == []


def test_a_message_that_breaks_resolution_becomes_a_dead_letter_and_the_batch_goes_on(adapter, registered, cfg,
                                                                                     monkeypatch):
    acks: list[str] = []
    directory = DeviceDirectory()
    real = directory.resolve
    monkeypatch.setattr(directory, "resolve",
                        lambda m: (_ for _ in ()).throw(ValueError("bug")) if m.kind == "boat" else real(m))
    sink = Sink(cfg.batch, directory)
    sink._add(_delivery(adapter, acks, "boat", BOAT, position(107.585, 16.465)))
    sink._add(_delivery(adapter, acks, "sensor", SENSOR, air(pm25=1)))
    report = sink.flush()
    assert acks == ["boat", "sensor"] and (report.inserted, report.dead_letters) == (1, 1)
    from ingestion.models import DeadLetter
    assert DeadLetter.objects.get(topic=BOAT).reason == "internal_error"
