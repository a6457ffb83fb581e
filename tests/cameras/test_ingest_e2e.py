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
