# SPDX-License-Identifier: AGPL-3.0-or-later
"""Event snapshots: a JPEG of the frame with the faces of uninvolved people blurred.

Faces are found with OpenCV's Haar frontal-face cascade, which the
``opencv-python-headless`` 4.x wheel ships (``cv2.data.haarcascades``; the
5.0 wheels dropped cascades, hence the ``<5`` pin). Every face found is
blurred, and so is everything inside other objects' boxes that the event
is not about (their plates included), so only the object of the event
stays sharp. Snapshots are files (``CAMERA_SNAPSHOT_DIR``), never MQTT
payloads; messages carry their path.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from django.conf import settings

logger = logging.getLogger(__name__)
_CASCADE: cv2.CascadeClassifier | None = None


def snapshot_dir() -> Path:
    return Path(os.environ.get("CAMERA_SNAPSHOT_DIR") or Path(settings.BASE_DIR) / ".run" / "camera-snapshots")


def _faces(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    global _CASCADE
    if _CASCADE is None:
        _CASCADE = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if _CASCADE.empty():
        return []
    return [tuple(map(int, f)) for f in _CASCADE.detectMultiScale(gray, 1.1, 4, minSize=(12, 12))]


def blur_regions(frame: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
    out = frame.copy()
    height, width = out.shape[:2]
    for x, y, w, h in boxes:
        x0, y0 = max(0, int(x)), max(0, int(y))
        x1, y1 = min(width, int(x + w)), min(height, int(y + h))
        if x1 - x0 > 1 and y1 - y0 > 1:
            k = max(3, (min(x1 - x0, y1 - y0) // 3) | 1)
            out[y0:y1, x0:x1] = cv2.GaussianBlur(out[y0:y1, x0:x1], (k, k), 0)
    return out


def privacy_frame(frame: np.ndarray, keep: Sequence[float] | None, others: Sequence[Sequence[float]]) -> np.ndarray:
    """Blur every face and every uninvolved object box; ``keep`` (the event's object) stays sharp."""
    faces = _faces(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    return blur_regions(frame, [*faces, *[b for b in others if keep is None or list(b) != list(keep)]])


def write_snapshot(frame: np.ndarray, camera: str, name: str, keep: Sequence[float] | None = None,
                   others: Sequence[Sequence[float]] = (), *, quality: int = 80) -> str:
    """Write the blurred JPEG; returns its path relative to :func:`snapshot_dir`."""
    folder = snapshot_dir() / camera / time.strftime("%Y%m%d")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jpg"
    ok, data = cv2.imencode(".jpg", privacy_frame(frame, keep, others), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError("JPEG encoding failed")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data.tobytes())
    tmp.replace(path)       # never a half-written file
    return str(path.relative_to(snapshot_dir()))


__all__ = ["blur_regions", "privacy_frame", "snapshot_dir", "write_snapshot"]
