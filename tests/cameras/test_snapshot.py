# SPDX-License-Identifier: AGPL-3.0-or-later
"""Snapshots: uninvolved objects blurred, the event's object sharp, written atomically as JPEG files."""
from __future__ import annotations

import cv2
import numpy as np

from cameras.snapshot import privacy_frame, write_snapshot


def checkerboard(size: int = 240) -> np.ndarray:
    tile = np.indices((size, size)).sum(axis=0) // 4 % 2 * 255
    return np.repeat(tile[:, :, None].astype(np.uint8), 3, axis=2)


def sharpness(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_uninvolved_boxes_are_blurred_and_the_event_object_stays_sharp():
    frame = checkerboard()
    keep, other = (10, 10, 80, 60), (120, 120, 100, 80)
    out = privacy_frame(frame, keep, [keep, other])
    k = (slice(10, 70), slice(10, 90))
    o = (slice(120, 200), slice(120, 220))
    assert sharpness(out[k]) == sharpness(frame[k])
    assert sharpness(out[o]) < 0.2 * sharpness(frame[o])


def test_the_face_detector_ships_in_the_wheel():
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    assert not cascade.empty()


def test_a_snapshot_is_a_jpeg_file_named_after_the_object(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMERA_SNAPSHOT_DIR", str(tmp_path))
    relative = write_snapshot(checkerboard(), "cam-x", "cam-x-1-4", None, [])
    path = tmp_path / relative
    assert path.name == "cam-x-1-4.jpg" and path.read_bytes()[:2] == b"\xff\xd8"
    assert not list(tmp_path.rglob("*.tmp"))
