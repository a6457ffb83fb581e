# SPDX-License-Identifier: AGPL-3.0-or-later
"""Snapshots: only the event's object sharp (or faces and other objects blurred), written atomically as JPEG."""
from __future__ import annotations

import cv2
import numpy as np

from cameras.snapshot import privacy_frame, write_snapshot


def checkerboard(size: int = 240) -> np.ndarray:
    tile = np.indices((size, size)).sum(axis=0) // 4 % 2 * 255
    return np.repeat(tile[:, :, None].astype(np.uint8), 3, axis=2)


def sharpness(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


KEEP, OTHER = (10, 10, 80, 60), (120, 120, 100, 80)
K, O, REST = (slice(10, 70), slice(10, 90)), (slice(120, 200), slice(120, 220)), (slice(100, 118), slice(0, 240))


def test_by_default_everything_but_the_event_object_is_blurred():
    frame = checkerboard()
    out = privacy_frame(frame, KEEP, [KEEP, OTHER])
    assert np.array_equal(out[K], frame[K])
    assert sharpness(out[O]) < 0.05 * sharpness(frame[O]) and sharpness(out[REST]) < 0.05 * sharpness(frame[REST])


def test_faces_mode_blurs_other_objects_but_keeps_the_scene_sharp():
    frame = checkerboard()
    out = privacy_frame(frame, KEEP, [KEEP, OTHER], mode="faces")
    assert sharpness(out[K]) == sharpness(frame[K]) and np.array_equal(out[REST], frame[REST])
    assert sharpness(out[O]) < 0.2 * sharpness(frame[O])


def test_the_face_detector_ships_in_the_wheel():
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    assert not cascade.empty()


def test_a_snapshot_is_a_jpeg_file_named_after_the_object(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMERA_SNAPSHOT_DIR", str(tmp_path))
    relative = write_snapshot(checkerboard(), "cam-x", "cam-x-1-4", None, [])
    path = tmp_path / relative
    assert path.name == "cam-x-1-4.jpg" and path.read_bytes()[:2] == b"\xff\xd8"
    assert not list(tmp_path.rglob("*.tmp"))


def test_snapshots_are_served_only_to_users_who_may_read_events(tmp_path, monkeypatch, client, django_user_model,
                                                                 db):
    from twin.roles import Role

    monkeypatch.setenv("CAMERA_SNAPSHOT_DIR", str(tmp_path))
    relative = write_snapshot(checkerboard(), "cam-x", "cam-x-1-5", None, [])
    url = f"/cameras/snapshots/{relative}"
    assert client.get(url).status_code == 401
    operator = django_user_model.objects.create_user("snap-operator", password="x")
    from django.contrib.auth.models import Group
    operator.groups.add(Group.objects.get(name=Role.OPERATOR))
    client.force_login(operator)
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert client.get("/cameras/snapshots/cam-x/20260101/nope.jpg").status_code == 404
    assert client.get("/cameras/snapshots/..%2F..%2Fetc/passwd").status_code in (400, 404)
