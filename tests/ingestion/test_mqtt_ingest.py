# SPDX-License-Identifier: AGPL-3.0-or-later
"""MQTT ingestion against the real Mosquitto and PostGIS: stored once, acknowledged after commit."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from tests.ingestion.mqtt_support import (NGO_MON, WAIT_S, air, base_time, broker, clear_retained,  # noqa: F401
                                          devices, in_thread, iso, publisher, retained, start_worker, unique_name,
                                          wait_for, worker_config)
from twin.models import Feature, GeoEvent, Observation

pytestmark = pytest.mark.django_db


def test_reading_published_at_qos1_is_committed_once_and_updates_last_seen(devices, start_worker, publisher):
    start_worker(worker_config(devices.root, unique_name()))
    moment = base_time()
    publisher.publish(devices.topic("sensor", "s0", "air"), air(moment, pm25=31.5, pm10=40))
    publisher.wait()

    wait_for(lambda: devices.observations(), what="the observation row")
    stored = Observation.objects.get(feature_id=devices.sensor(0))
    assert stored.time == moment
    assert stored.values == {"pm25": 31.5, "pm10": 40.0}
    assert Feature.objects.get(pk=devices.sensor(0)).last_seen == moment
    assert not devices.dead_letters().exists()


def test_the_same_message_published_twice_is_stored_once(devices, start_worker, publisher):
    start_worker(worker_config(devices.root, unique_name()))
    moment = base_time()
    for _ in range(2):
        publisher.publish(devices.topic("sensor", "s1", "air"), air(moment, pm25=5))
    publisher.publish(devices.topic("sensor", "s1", "air"), air(moment + timedelta(seconds=1), pm25=6))
    publisher.wait()

    wait_for(lambda: len(devices.observations()) >= 2, what="two distinct readings")
    # The sentinel reading after the duplicate is stored, so the duplicate was processed too.
    assert sorted(t for _, t in devices.observations()) == [moment, moment + timedelta(seconds=1)]


def test_batched_payload_is_stored_as_one_row_per_reading(devices, start_worker, publisher):
    start_worker(worker_config(devices.root, unique_name()))
    moment = base_time()
    batch = [air(moment + timedelta(seconds=i), pm25=i) for i in range(250)]
    publisher.publish(devices.topic("sensor", "s2", "air"), batch)
    publisher.wait()

    wait_for(lambda: len(devices.observations()) == 250, what="250 readings")
    assert Feature.objects.get(pk=devices.sensor(2)).last_seen == moment + timedelta(seconds=249)


def test_unknown_device_is_dead_lettered_and_not_stored(devices, start_worker, publisher):
    start_worker(worker_config(devices.root, unique_name()))
    publisher.publish(devices.topic("sensor", "nobody", "air"), air(base_time()))
    publisher.wait()

    letter = wait_for(lambda: devices.dead_letters().first(), what="the dead letter")
    assert letter.reason == "unknown_device"
    assert "nobody" in letter.detail
    assert devices.observations() == []


def test_messages_published_while_the_worker_is_stopped_arrive_after_it_restarts(devices, start_worker, publisher):
    name = unique_name()
    first = start_worker(worker_config(devices.root, name))
    first.stop()          # the session (and its shared subscription) stays on the broker
    first.join(10)
    moment = base_time()
    for i in range(50):
        publisher.publish(devices.topic("sensor", "s3", "air"), air(moment + timedelta(seconds=i)))
    publisher.wait()
    assert devices.observations() == []

    start_worker(worker_config(devices.root, name))    # same client id: the session resumes
    wait_for(lambda: len(devices.observations()) == 50, what="the 50 readings queued while stopped")


def test_positions_status_and_alerts_reach_their_features(devices, start_worker, publisher):
    start_worker(worker_config(devices.root, unique_name()))
    moment = base_time()
    publisher.publish(devices.topic("boat", "b0", "position"),
                      {"observationDateTime": iso(moment), "speed": 12.5, "heading": 270,
                       "location": {"type": "Point", "coordinates": [107.586, 16.466]}})
    publisher.publish(devices.topic("sensor", "s4", "status"),
                      {"type": "Device", "dateLastValueReported": iso(moment), "deviceState": "maintenance",
                       "batteryLevel": 0.2})
    publisher.publish(devices.topic("camera", "c0", "alert"),
                      {"type": "Alert", "dateIssued": iso(moment), "category": "fire", "severity": "critical"})
    publisher.wait()

    wait_for(lambda: len(devices.observations()) == 3, what="three observations")
    position = Observation.objects.get(feature_id=devices.ids[("boat", "b0")])
    assert (position.position.x, position.position.y) == (107.586, 16.466)
    assert position.values == {"speed": 12.5, "heading": 270.0}
    assert Feature.objects.get(pk=devices.sensor(4)).status == "maintenance"
    alert = Observation.objects.get(feature_id=devices.ids[("camera", "c0")])
    assert alert.values == {"category": "fire", "severity": "critical", "alarm": True}


def test_rules_engine_is_called_with_the_readings_after_they_are_committed(devices, start_worker, publisher):
    seen: list = []
    committed_when_called: list[bool] = []
    called = threading.Event()

    def rules(readings):
        seen.extend(readings)
        committed_when_called.append(len(devices.observations()) == len(readings))
        called.set()

    start_worker(worker_config(devices.root, unique_name()), rules=rules)
    moment = base_time()
    publisher.publish(devices.topic("sensor", "s5", "air"),
                      [air(moment, pm25=80), air(moment + timedelta(seconds=1), 90)])
    publisher.wait()

    assert called.wait(WAIT_S)
    assert [(r.feature_id, r.stream, r.values["pm25"]) for r in seen] == [
        (devices.sensor(5), "air", 80.0), (devices.sensor(5), "air", 90.0)]
    assert seen[0].city == "hue" and seen[0].device_id == "s5" and seen[0].message_id.endswith(":0")
    assert committed_when_called == [True]


def test_worker_announces_itself_online_then_offline_on_the_retained_availability_topic(devices, start_worker):
    name = unique_name()
    worker = start_worker(worker_config(devices.root, name))
    topic = f"{devices.root}/all/ingest/{name}/available"
    assert retained(topic) == b"online"
    worker.stop()
    worker.join(10)
    assert retained(topic) == b"offline"
    clear_retained(topic)


def test_a_fire_alert_through_mqtt_opens_a_fire_event_and_its_reset_resolves_it(devices, start_worker, publisher):
    from ingestion.rules.engine import configured, evaluate

    panel = in_thread(devices.add, "sensor", "fa0", NGO_MON[0], NGO_MON[1] + 0.004,
                      {"sensor_type": "fire_alarm", "unit": "state"})
    with configured({"routing": {"fallback_agency": "hue-ioc"}}):
        start_worker(worker_config(devices.root, unique_name()), rules=evaluate)
        moment = base_time()
        topic = devices.topic("sensor", "fa0", "alert")
        publisher.publish(topic, {"type": "Alert", "dateIssued": iso(moment), "category": "fire",
                                  "severity": "critical", "description": "Zone 2"})
        publisher.wait()
        event = wait_for(lambda: GeoEvent.objects.filter(source_feature_id=panel, category="fire").first(),
                         what="the fire event")
        assert (event.severity, event.status) == (5, "new")
        publisher.publish(topic, {"type": "Alert", "dateIssued": iso(moment + timedelta(minutes=5)),
                                  "category": "fire", "alarm": False})
        publisher.wait()
        wait_for(lambda: GeoEvent.objects.get(pk=event.pk).status == "resolved", what="the reset to resolve it")



def test_a_committed_batch_is_acknowledged_at_once_so_a_resumed_session_redelivers_nothing(
        devices, start_worker, publisher):
    # The sink acknowledges a whole batch with one wake-up of paho's network
    # thread (MqttAdapter.ack_many); every PUBACK must still reach the broker.
    name = unique_name()
    first = start_worker(worker_config(devices.root, name))
    moment = base_time()
    for i in range(200):
        publisher.publish(devices.topic("sensor", "s3", "air"), air(moment + timedelta(seconds=i)))
    publisher.wait()
    wait_for(lambda: len(devices.observations()) == 200, what="the 200 readings")
    assert first.sink.received == 200
    wait_for(lambda: first.sink.idle, what="the last batch acknowledged")
    first.stop()          # the session stays on the broker: anything unacknowledged would come back
    first.join(10)

    second = start_worker(worker_config(devices.root, name))
    publisher.publish(devices.topic("sensor", "s3", "air"), air(moment + timedelta(seconds=500)))
    publisher.wait()
    wait_for(lambda: len(devices.observations()) == 201, what="the sentinel reading")
    wait_for(lambda: second.sink.idle, what="the sentinel acknowledged")
    assert second.sink.received == 1          # only the sentinel: no redelivery of the 200
