# SPDX-License-Identifier: AGPL-3.0-or-later
"""Real footage → camera worker → real Mosquitto → ingestion worker → PostGIS geo-events, end to end."""
from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.contrib.gis.geos import Point

from cameras.publish import MqttPublisher
from cameras.worker import CameraSpec, CameraWorker, run_cameras
from tests.cameras.support import CAR_PARK, fixture_camera, fixture_config, require_video
from tests.ingestion.mqtt_support import (broker, devices, in_thread, start_worker, unique_name,  # noqa: F401
                                          wait_for, worker_config)
from twin.models import GeoEvent, Observation

pytestmark = pytest.mark.django_db


def test_car_park_footage_becomes_located_detection_events_that_open_and_resolve(devices, start_worker,
                                                                                  tmp_path, monkeypatch):
    from ingestion.rules.engine import configured, evaluate

    monkeypatch.setenv("CAMERA_SNAPSHOT_DIR", str(tmp_path))
    cam = fixture_camera("cam-leduan-01")
    props = {k: cam[k] for k in ("heading_deg", "fov_deg", "range_m", "mast_height_m")} | {"config": cam["config"]}
    feature_id = in_thread(devices.add, "camera", "cam-e2e", cam["lon"], cam["lat"], props)
    with configured({"routing": {"fallback_agency": "hue-ioc"}}):
        start_worker(worker_config(devices.root, unique_name()), rules=evaluate)
        publisher = MqttPublisher(settings.MQTT_URL, city="hue", root=devices.root)
        worker = CameraWorker(CameraSpec("cam-e2e", str(require_video(CAR_PARK)), fixture_config("cam-leduan-01")),
                              publisher, counts_interval_s=1.0, realtime=False)
        try:
            run_cameras([worker], threading.Event(), max_seconds=120)
        finally:
            publisher.close()
        assert publisher.failed == 0 and worker.analysis.lines.totals == {"aisle": {"down": 2, "up": 2}}

        def settled():
            events = list(GeoEvent.objects.filter(source_feature_id=feature_id, kind="camera"))
            return events if events and all(e.status == "resolved" for e in events) else None

        events = wait_for(settled, what="every detection event resolved")
    camera = Point(cam["lon"], cam["lat"], srid=4326)
    assert len(events) >= 4                           # the four cars that crossed, at least
    for event in events:
        assert event.category == "traffic_detection" and event.severity == 1
        assert event.geom.transform(3405, clone=True).distance(camera.transform(3405, clone=True)) < 25
        assert event.payload["object"]["snapshot"].endswith(".jpg")
        assert (tmp_path / event.payload["object"]["snapshot"]).is_file()
        assert event.agency is not None and event.ward is not None
    counts = wait_for(lambda: Observation.objects.filter(feature_id=feature_id, values__has_key="lines").exists(),
                      what="camera counts stored as observations")
    assert counts


def test_twin_camera_run_reads_the_camera_from_its_layer_and_publishes_to_the_broker(hue, broker, capsys, tmp_path,
                                                                                     monkeypatch):
    from django.core.management import call_command

    monkeypatch.setenv("CAMERA_SNAPSHOT_DIR", str(tmp_path))
    from cameras.load import load_cameras
    from tests.cameras.support import HUE_CAMERAS
    from tests.ingestion.mqtt_support import unique_root

    load_cameras(HUE_CAMERAS)
    call_command("camera", "run", "cam-leduan-01", "--fast", "--topic-root", unique_root(), "--max-seconds", "90")
    out = capsys.readouterr().out
    assert "cam-leduan-01: 377 frames decoded" in out and "{'aisle': {'down': 2, 'up': 2}}" in out


@pytest.mark.parametrize("args, message", [
    (["run"], "at least one camera"),
    (["run", "no-such-camera"], "no such camera"),
    (["run", "cam-leduan-01", "cam-hungvuong-01", "--source", "x.mp4"], "one camera only"),
])
def test_twin_camera_run_refuses_bad_arguments_with_a_clear_message(hue, args, message):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from cameras.load import load_cameras
    from tests.cameras.support import HUE_CAMERAS

    load_cameras(HUE_CAMERAS)
    with pytest.raises(CommandError, match=message):
        call_command("camera", *args)
