# SPDX-License-Identifier: AGPL-3.0-or-later
"""A watch-listed plate in a composed video → camera worker → real Mosquitto → ingestion → a PostGIS geo-event.

The video is a real car-park frame with a drawn vehicle carrying a drawn Vietnamese plate driving through
it; the default motion detector, tracker, plate localisation and the real PP-OCRv4 recogniser run on it.
"""
from __future__ import annotations

import logging
import threading

import pytest
from django.conf import settings

from cameras import plates
from cameras.config import CameraConfig
from cameras.publish import MemoryPublisher, MqttPublisher
from cameras.worker import CameraSpec, CameraWorker, run_cameras
from tests.cameras.plate_images import composed_video, plate, real_frame, vehicle
from tests.cameras.support import CAR_PARK, fixture_camera, require_video
from tests.ingestion.mqtt_support import (broker, devices, in_thread, start_worker, unique_name,  # noqa: F401
                                          wait_for, worker_config)
from twin.models import GeoEvent

WATCHED = "75A-123.45"


def plate_config(watch: list[str], **analytics) -> tuple[dict, CameraConfig]:
    cam = fixture_camera("cam-leduan-01")
    raw = {**cam["config"], "plates": {"enabled": True, "watch_list": watch},
           "analytics": {**cam["config"].get("analytics", {}), **analytics}}
    return cam, CameraConfig.model_validate(raw)


def clip(tmp_path, rows: list[str] | None) -> str:
    car = vehicle(plate(rows, 110 if len(rows) == 1 else 80) if rows else plate(["    "], 110), 200, 150)
    return str(composed_video(tmp_path / "composed.avi", real_frame(require_video(CAR_PARK), 0), car))


def run_one(url: str, config: CameraConfig, publisher) -> CameraWorker:
    worker = CameraWorker(CameraSpec("cam-plate", url, config), publisher, counts_interval_s=1.0, realtime=False)
    run_cameras([worker], threading.Event(), max_seconds=60)
    return worker


@pytest.mark.django_db
def test_a_watch_listed_plate_in_a_composed_video_raises_a_watchlist_geo_event(devices, start_worker, tmp_path,
                                                                               monkeypatch):
    from ingestion.rules.engine import configured, evaluate

    monkeypatch.setenv("CAMERA_SNAPSHOT_DIR", str(tmp_path))
    cam, config = plate_config(["29-B1 123.45", "75a 12345"])
    props = {k: cam[k] for k in ("heading_deg", "fov_deg", "range_m", "mast_height_m")} | {"config": cam["config"]}
    feature_id = in_thread(devices.add, "camera", "cam-plate", cam["lon"], cam["lat"], props)
    with configured({"routing": {"fallback_agency": "hue-ioc"}}):
        start_worker(worker_config(devices.root, unique_name()), rules=evaluate)
        publisher = MqttPublisher(settings.MQTT_URL, city="hue", root=devices.root)
        try:
            worker = run_one(clip(tmp_path, [WATCHED]), config, publisher)
        finally:
            publisher.close()
        assert publisher.failed == 0 and worker.plate_reads >= 1

        def resolved_alert():
            found = GeoEvent.objects.filter(source_feature_id=feature_id, category="plate_watchlist")
            return found.first() if found.exists() and all(e.status == "resolved" for e in found) else None

        event = wait_for(resolved_alert, what="the plate_watchlist event, opened then resolved")
    obj = event.payload["object"]
    assert obj["plate"] == WATCHED and event.severity == 4
    assert (tmp_path / obj["snapshot"]).is_file()
    assert GeoEvent.objects.filter(source_feature_id=feature_id, category="plate_watchlist").count() == 1


def test_a_plate_not_on_the_watch_list_raises_nothing_and_is_read_once(tmp_path):
    publisher = MemoryPublisher()
    _, config = plate_config(["29-B1 123.45"], snapshots=False)
    worker = run_one(clip(tmp_path, [WATCHED]), config, publisher)
    vehicles = {p["after"]["id"] for _, s, p in publisher.messages if s == "detection"}
    assert vehicles and not any(v.endswith("-plate") for v in vehicles)
    assert worker.plate_reads == len(vehicles)            # a valid plate stops the reading of its vehicle


def test_an_unreadable_vehicle_is_read_a_few_times_per_track_not_every_frame(tmp_path):
    publisher = MemoryPublisher()
    _, config = plate_config([WATCHED], snapshots=False)
    worker = run_one(clip(tmp_path, None), config, publisher)
    tracks = {p["after"]["id"] for _, s, p in publisher.messages if s == "detection"}
    assert tracks and 1 <= worker.plate_reads <= config.plates.max_reads * len(tracks)
    assert worker.analysis.frames_analysed > 10 * worker.plate_reads


def test_without_a_reader_the_worker_runs_says_so_and_reports_regions_only(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(plates, "READERS", {})
    publisher = MemoryPublisher()
    _, config = plate_config([WATCHED], snapshots=False)
    with caplog.at_level(logging.WARNING, logger="cameras.worker"):
        worker = run_one(clip(tmp_path, [WATCHED]), config, publisher)
    assert "no plate reader is installed" in caplog.text
    assert worker.plate_reads >= 1
    assert not [p for _, s, p in publisher.messages if s == "detection" and p["after"].get("category")]
    assert [p for _, s, p in publisher.messages if s == "detection" and p["type"] == "end"]
