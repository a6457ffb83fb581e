# SPDX-License-Identifier: AGPL-3.0-or-later
"""Event snapshots: a JPEG of the frame where only the object of the event stays sharp.

Two privacy modes (``analytics.snapshot_privacy``):

- ``background`` (default): everything outside the event's object box is
  blurred (a cheap blur of a 1/8-size copy, scaled back), so no uninvolved
  face or plate can be read, at about 2 ms a 720p frame. The scene's layout
  (where the cars are, how dense the traffic is) stays visible.
- ``faces``: the frame stays sharp except every face OpenCV's Haar
  frontal-face cascade finds (the ``opencv-python-headless`` 4.x wheel ships
  it in ``cv2.data.haarcascades``; 5.0 dropped cascades, hence the ``<5``
  pin) and every *other* tracked object's box (their plates included).
  Measured here: 0.1–0.9 s per 720p frame on one core, too slow to run for
  every vehicle of four cameras, hence not the default.

Snapshots are files (``CAMERA_SNAPSHOT_DIR``, default ``.run/camera-snapshots``),
never MQTT payloads; messages carry their path relative to that folder.
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
    return [tuple(map(int, f)) for f in _CASCADE.detectMultiScale(gray, 1.15, 4, minSize=(12, 12))]


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


def blur_background(frame: np.ndarray, keep: Sequence[float] | None) -> np.ndarray:
    """Everything blurred beyond recognition except the ``keep`` box."""
    height, width = frame.shape[:2]
    small = cv2.resize(frame, (max(1, width // 8), max(1, height // 8)), interpolation=cv2.INTER_AREA)
    out = cv2.resize(cv2.GaussianBlur(small, (3, 3), 0), (width, height), interpolation=cv2.INTER_LINEAR)
    if keep is not None:
        x, y, w, h = keep
        x0, y0 = max(0, int(x)), max(0, int(y))
        x1, y1 = min(width, int(x + w)), min(height, int(y + h))
        out[y0:y1, x0:x1] = frame[y0:y1, x0:x1]
    return out


def privacy_frame(frame: np.ndarray, keep: Sequence[float] | None, others: Sequence[Sequence[float]],
                  mode: str = "background") -> np.ndarray:
    """The frame as it may be stored: see the module docstring for the two modes."""
    if mode == "background":
        return blur_background(frame, keep)
    height, width = frame.shape[:2]
    scale = min(1.0, 640 / width)
    gray = cv2.cvtColor(cv2.resize(frame, (round(width * scale), round(height * scale))) if scale < 1 else frame,
                        cv2.COLOR_BGR2GRAY)
    faces = [(x / scale, y / scale, w / scale, h / scale) for x, y, w, h in _faces(gray)]
    return blur_regions(frame, [*faces, *[b for b in others if keep is None or list(b) != list(keep)]])


def write_snapshot(frame: np.ndarray, camera: str, name: str, keep: Sequence[float] | None = None,
                   others: Sequence[Sequence[float]] = (), *, quality: int = 80, mode: str = "background") -> str:
    """Write the blurred JPEG; returns its path relative to :func:`snapshot_dir`."""
    folder = snapshot_dir() / camera / time.strftime("%Y%m%d")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jpg"
    ok, data = cv2.imencode(".jpg", privacy_frame(frame, keep, others, mode), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError("JPEG encoding failed")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data.tobytes())
    tmp.replace(path)       # never a half-written file
    return str(path.relative_to(snapshot_dir()))


__all__ = ["blur_background", "blur_regions", "privacy_frame", "snapshot_dir", "write_snapshot"]
