# SPDX-License-Identifier: AGPL-3.0-or-later
"""The detector interface and its registry.

A detector takes a BGR frame and returns pixel boxes in that frame's
coordinates. Everything after it (tracking, counting, rules, publishing)
only sees :class:`Detection` objects, so a DNN detector (an ONNX model on
onnxruntime, say) replaces the motion detector by registering a name and
setting ``analytics.detector`` in the camera's configuration.
"""
from __future__ import annotations

import contextlib
import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from cameras.config import Analytics


@dataclass(frozen=True, slots=True)
class Detection:
    """One object in one frame: box ``(x, y, w, h)`` in full-resolution pixels."""

    box: tuple[float, float, float, float]
    label: str = "vehicle"
    score: float = 1.0

    @property
    def foot(self) -> tuple[float, float]:
        """Bottom centre of the box: where the object touches the ground."""
        x, y, w, h = self.box
        return x + w / 2, y + h

    @property
    def centre(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2, y + h / 2


class Detector(ABC):
    """Frames in, detections out. One instance per camera (detectors keep state)."""

    name: ClassVar[str]

    def __init__(self, cfg: Analytics) -> None:
        self.cfg = cfg

    @abstractmethod
    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Objects in ``frame`` (BGR, full resolution)."""

    def observe(self, frame: np.ndarray) -> None:
        """See a frame that is not analysed (keeps a background model current). Default: nothing."""

    def reset(self) -> None:
        """Forget the scene (after a reconnect the view may have changed)."""


DETECTORS: dict[str, str | type[Detector]] = {"motion": "cameras.detect.motion.MotionDetector"}
_BUILTIN = dict(DETECTORS)


class UnknownDetectorError(LookupError):
    pass


def register(name: str, detector: str | type[Detector]) -> None:
    DETECTORS[name] = detector


def reset_registry() -> None:
    DETECTORS.clear()
    DETECTORS.update(_BUILTIN)


def build_detector(cfg: Analytics) -> Detector:
    entry = DETECTORS.get(cfg.detector)
    if entry is None:
        raise UnknownDetectorError(f"unknown detector {cfg.detector!r}; known: {', '.join(sorted(DETECTORS))}")
    if isinstance(entry, str):
        module, cls = entry.rsplit(".", 1)
        entry = getattr(importlib.import_module(module), cls)
    return entry(cfg)


@contextlib.contextmanager
def registered(name: str, detector: str | type[Detector]) -> Iterator[None]:
    """Register a detector for a block (tests, plugins)."""
    previous = DETECTORS.get(name)
    register(name, detector)
    try:
        yield
    finally:
        if previous is None:
            DETECTORS.pop(name, None)
        else:
            DETECTORS[name] = previous
