# SPDX-License-Identifier: AGPL-3.0-or-later
"""Dead letters through the real broker: garbage is kept with its reason; replay after fixing."""
from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from django.core.management import call_command

from ingestion.deadletter import list_dead_letters, replay_dead_letters, store_dead_letters
from ingestion.messages import Rejected
from tests.ingestion.mqtt_support import (NGO_MON, SENSOR_PROPS, air, base_time, broker, devices,  # noqa: F401
                                          in_thread, iso, publisher, start_worker, unique_name, wait_for,
                                          worker_config)
from twin.models import Observation

pytestmark = pytest.mark.django_db


def _garbage(devices, limits) -> list[tuple[str, bytes, str]]:
    """(topic, payload, expected reason) for every kind of bad message."""
    now = datetime.now(timezone.utc)
    good = json.dumps(air(base_time()))
    sensor = devices.topic("sensor", "s0", "air")
    boat = devices.topic("boat", "b0", "position")

    def fix(lon, lat):
        return json.dumps({"observationDateTime": iso(base_time()),
                           "location": {"type": "Point", "coordinates": [lon, lat]}}).encode()

    return [
        (sensor, b'{"dateObserved": "2026-', "malformed_json"),
        (sensor, b"\xc3\x28 not utf-8", "malformed_json"),
        (sensor, good.replace('"pm25": 12.5', '"pm25": NaN').encode(), "malformed_json"),
        (sensor, good.replace('"pm25": 12.5', '"pm25": Infinity').encode(), "malformed_json"),
        (sensor, good.replace('12.5', '"12.5"').encode(), "invalid_payload"),
        (sensor, good.replace('"pm25"', '"pm2_5"').encode(), "invalid_payload"),
        (sensor, json.dumps(air(now + timedelta(days=2))).encode(), "time_out_of_range"),
        (sensor, b"[" + b" " * (limits.max_payload_bytes + 1) + b"]", "oversized"),
        (boat, fix(0, 0), "out_of_extent"),
        (boat, fix(106.70, 10.78), "out_of_extent"),            # Hồ Chí Minh City, not Huế
        (devices.topic("sensor", "ghost", "air"), good.encode(), "unknown_device"),
        (devices.topic("sensor", "s0", "radio"), good.encode(), "unknown_stream"),
    ]


def test_each_kind_of_garbage_lands_in_dead_letters_with_its_reason_and_the_worker_keeps_going(
        devices, start_worker, publisher):
    worker = start_worker(worker_config(devices.root, unique_name()))
    garbage = _garbage(devices, worker.cfg.limits)
    for topic, payload, _ in garbage:
        publisher.publish(topic, payload)
    publisher.publish(devices.topic("sensor", "s1", "air"), air(base_time(), pm25=7))   # after all of them
    publisher.wait()

    wait_for(lambda: devices.dead_letters().count() == len(garbage) and devices.observations(),
             what=f"{len(garbage)} dead letters and the good reading")
    keep = worker.cfg.limits.keep_bytes
    stored = {(letter.topic, bytes(letter.payload)): letter for letter in devices.dead_letters()}
    for topic, payload, reason in garbage:
        letter = stored[(topic, payload[:keep] if reason == "oversized" else payload)]
        assert (letter.reason, letter.payload_size) == (reason, len(payload))
        assert letter.detail and letter.received_at
    assert len(devices.observations()) == 1


def test_dead_letters_are_listed_and_replayed_once_the_device_is_registered(devices, start_worker, publisher):
    cfg = worker_config(devices.root, unique_name())
    start_worker(cfg)
    moment = base_time()
    publisher.publish(devices.topic("sensor", "s42", "air"), [air(moment, pm25=1),
                                                             air(moment + timedelta(seconds=1), pm25=2)])
    publisher.wait()
    wait_for(lambda: devices.dead_letters().exists(), what="the dead letter")
    [letter] = list_dead_letters(reason="unknown_device", topic_prefix=devices.root)

    report = in_thread(replay_dead_letters, list_dead_letters(ids=[letter.pk]), cfg=cfg)
    assert report.results[letter.pk].startswith("rejected: unknown_device")      # still unknown

    feature_id = in_thread(devices.add, "sensor", "s42", NGO_MON[0], NGO_MON[1] + 0.002, SENSOR_PROPS)
    report = in_thread(replay_dead_letters, list_dead_letters(ids=[letter.pk]), cfg=cfg)
    assert report.results == {letter.pk: "ok: 2 reading(s)"}
    assert sorted(Observation.objects.filter(feature_id=feature_id).values_list("time", flat=True)) == [
        moment, moment + timedelta(seconds=1)]
    letter.refresh_from_db()
    assert letter.replayed_at is not None
    assert not list_dead_letters(topic_prefix=devices.root).exists()            # pending list is empty now
    # Replaying again (e.g. --all) cannot store the readings twice.
    in_thread(replay_dead_letters, list_dead_letters(ids=[letter.pk], include_replayed=True), cfg=cfg)
    assert Observation.objects.filter(feature_id=feature_id).count() == 2


def test_deadletters_command_lists_shows_and_replays(devices, start_worker, publisher, tmp_path):
    cfg = worker_config(devices.root, unique_name())
    start_worker(cfg)
    publisher.publish(devices.topic("sensor", "s43", "air"), air(base_time()))
    publisher.wait()
    letter = wait_for(lambda: devices.dead_letters().first(), what="the dead letter")
    config = tmp_path / "ingest.toml"
    config.write_text(f'[topics]\nroot = "{devices.root}"\n')

    def run(*args) -> str:
        out = io.StringIO()
        call_command("deadletters", *args, stdout=out, stderr=io.StringIO())
        return out.getvalue()

    listing = in_thread(run, "list", "--topic-prefix", devices.root)
    assert "unknown_device" in listing and str(letter.pk) in listing
    assert '"pm25": 12.5' in in_thread(run, "show", "--id", str(letter.pk))
    in_thread(devices.add, "sensor", "s43", NGO_MON[0], NGO_MON[1] + 0.003, SENSOR_PROPS)
    replay = in_thread(run, "replay", "--id", str(letter.pk), "--config", str(config), "--no-rules")
    assert "ok: 1 reading(s)" in replay and "1 stored" in replay


def test_a_dead_letter_redelivered_is_stored_once(devices):
    received = datetime.now(timezone.utc)
    rejected = Rejected(topic=devices.topic("sensor", "x", "air"), payload=b"{", reason="malformed_json",
                        received_at=received, details={"detail": "Expecting value"})
    in_thread(store_dead_letters, [rejected])
    in_thread(store_dead_letters, [rejected, rejected])
    assert devices.dead_letters().count() == 1


def test_an_oversized_dead_letter_is_not_replayable(devices):
    cfg = worker_config(devices.root, unique_name())
    rejected = Rejected(topic=devices.topic("sensor", "s0", "air"), payload=b"[{", reason="oversized",
                        received_at=datetime.now(timezone.utc), details={"detail": "too big", "size": 10**6})
    in_thread(store_dead_letters, [rejected])
    report = in_thread(replay_dead_letters, list_dead_letters(topic_prefix=devices.root), cfg=cfg)
    [result] = report.results.values()
    assert result.startswith("rejected: oversized: only the first 2 of 1000000 bytes")
