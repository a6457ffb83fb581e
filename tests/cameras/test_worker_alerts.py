# SPDX-License-Identifier: AGPL-3.0-or-later
"""Alerts through the worker: congestion and wrong-way episodes become new … end detection messages."""
from __future__ import annotations

import threading

import numpy as np

from cameras.config import CameraConfig
from cameras.detect import Detection, Detector, registered
from cameras.publish import MemoryPublisher
from cameras.worker import CameraSpec, CameraWorker, run_cameras
from tests.cameras.support import CAR_PARK, fixture_camera, require_video


class QueueDetector(Detector):
    """A scripted scene on the real car-park stream: a slow queue for 12 s, an empty road, then a car going up."""

    name = "queue"

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.n = 0

    def detect(self, frame: np.ndarray) -> list[Detection]:
        self.n += 1
        t = self.n / 12.5
        if t < 12:          # three cars creeping down the lane, 1 px per frame
            return [Detection((100 + 200 * k, 100 + self.n * 0.2, 120, 80)) for k in range(3)]
        if 16 < t < 22:     # one car driving down against the lawful direction (up)
            return [Detection((600, (t - 16) * 60, 120, 80))]
        return []


def config() -> CameraConfig:
    cam = fixture_camera("cam-leduan-01")["config"]
    return CameraConfig.model_validate({
        **cam,
        "lanes": [{"name": "lane", "polygon": [[0, 0], [420, 0], [420, 432], [0, 432]], "line": "aisle"}],
        "zones": [{"name": "aisle", "rule": "wrong_way", "polygon": [[0, 0], [768, 0], [768, 432], [0, 432]],
                   "expected_direction": [0, -1]}],
        "congestion": {"window_s": 4, "min_duration_s": 2, "clear_duration_s": 2},
        "analytics": {"detector": "queue", "snapshots": False, "labels": ["vehicle"]},
    })


def test_congestion_and_wrong_way_episodes_are_published_as_lifecycles():
    publisher = MemoryPublisher()
    with registered("queue", QueueDetector):
        worker = CameraWorker(CameraSpec("cam-q", str(require_video(CAR_PARK)), config()), publisher,
                              realtime=False)
        run_cameras([worker], threading.Event(), max_seconds=60)       # the 30 s clip, read flat out
    alerts = [(p["type"], p["after"]["category"], p["after"]["id"]) for _, s, p in publisher.messages
              if s == "detection" and p["after"].get("category")]
    congestion = [(kind, cid) for kind, cat, cid in alerts if cat == "congestion"]
    assert congestion[0][0] == "new" and congestion[-1][0] == "end"
    assert len({cid for _, cid in congestion}) == 1                      # one episode, one id
    first = next(p for _, s, p in publisher.messages if s == "detection" and p["after"].get("category") == "congestion")
    assert first["after"]["severity"] >= 4 and first["after"]["detail"]["level"] >= 2
    wrong = [kind for kind, cat, _ in alerts if cat == "wrong_way"]
    assert wrong[:1] == ["new"] and wrong[-1] == "end"
