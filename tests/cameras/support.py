# SPDX-License-Identifier: AGPL-3.0-or-later
"""Helpers for camera tests: the real footage, the Huế fixture's camera configs, synthetic frames."""
from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from cameras.config import CameraConfig

REPO = Path(__file__).resolve().parents[2]
VIDEO_DIR = REPO.parent / "shared" / "data" / "video"
HIGHWAY = VIDEO_DIR / "bgslibrary_video02_highway_cctv.avi"
CAR_PARK = VIDEO_DIR / "car-detection.mp4"
HUE_CAMERAS = REPO / "fixtures" / "cameras" / "hue.toml"


def fixture_camera(camera_id: str) -> dict:
    data = tomllib.loads(HUE_CAMERAS.read_text(encoding="utf-8"))
    return next(c for c in data["cameras"] if c["id"] == camera_id)


def fixture_config(camera_id: str, **analytics) -> CameraConfig:
    raw = dict(fixture_camera(camera_id)["config"])
    if analytics:
        raw["analytics"] = {**raw.get("analytics", {}), **analytics}
    return CameraConfig.model_validate(raw)


def require_video(path: Path) -> Path:
    """The real footage is part of the shared data; a missing file fails (never skips)."""
    if not path.is_file():
        pytest.fail(f"real footage missing: {path} (shared/data/video, see its MANIFEST)")
    return path


def scene(width: int = 320, height: int = 240, seed: int = 7) -> np.ndarray:
    """A textured static background (asphalt-like noise)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(70, 90, size=(height, width, 1), dtype=np.uint8)
    return np.repeat(base, 3, axis=2)


def frame_with(background: np.ndarray, boxes: list[tuple[int, int, int, int]], noise_seed: int) -> np.ndarray:
    """The background with bright rectangles ``(x, y, w, h)`` and a little sensor noise."""
    frame = background.copy()
    for x, y, w, h in boxes:
        frame[max(0, y):max(0, y + h), max(0, x):max(0, x + w)] = (230, 230, 235)
    rng = np.random.default_rng(noise_seed)
    noise = rng.integers(-3, 4, size=frame.shape, dtype=np.int16)
    return np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)
