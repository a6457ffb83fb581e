# SPDX-License-Identifier: AGPL-3.0-or-later
"""One camera's analysis: detect → track → count → lanes → congestion → zone rules.

Pure computation on frames and their times, with no I/O, so tests and the
benchmark drive it straight from a file and the worker drives it from a
live source. Time ``t`` is in seconds (stream time for files, wall clock
for live streams).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from cameras.config import CameraConfig
from cameras.count import CongestionChange, Crossing, build_counters
from cameras.detect import Detection, build_detector
from cameras.geometry import GroundMapping
from cameras.track import Track, Tracker
from cameras.zones import ZoneRules, ZoneViolation

logger = logging.getLogger(__name__)


@dataclass
class FrameResult:
    t: float
    tracks: list[Track] = field(default_factory=list)        # confirmed, alive
    started: list[Track] = field(default_factory=list)       # confirmed in this frame
    ended: list[Track] = field(default_factory=list)         # confirmed tracks that ended
    crossings: list[Crossing] = field(default_factory=list)
    violations: list[ZoneViolation] = field(default_factory=list)
    congestion: CongestionChange | None = None


class RateGate:
    """Analyse at ``fps`` while every frame is decoded: a frame is analysed when its time is due.

    >>> g = RateGate(12.5); [g.due(i / 25) for i in range(5)]
    [True, False, True, False, True]
    """

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self._next: float | None = None

    def due(self, t: float) -> bool:
        if self._next is None or t >= self._next - 1e-6:
            self._next = (t if self._next is None or t - self._next > self.period else self._next) + self.period
            return True
        return False


class CameraAnalysis:
    def __init__(self, cfg: CameraConfig, *, analysis_fps: float | None = None) -> None:
        self.cfg = cfg
        self.detector = build_detector(cfg.analytics)
        self.tracker = Tracker(min_hits=cfg.analytics.min_hits, max_lost_s=cfg.analytics.max_lost_s)
        cal = cfg.calibration
        self.mapping = GroundMapping(tuple(map(tuple, cal.image_points)), tuple(map(tuple, cal.ground_points))) \
            if cal else None
        self.lines, self.lanes, self.congestion = build_counters(cfg, self.mapping)
        self.zones = ZoneRules(cfg.zones, self.mapping)
        self.gate = RateGate(analysis_fps or cfg.analytics.analysis_fps)
        self.frames_analysed = 0

    def offer(self, frame: np.ndarray, t: float) -> FrameResult | None:
        """Every decoded frame comes here; only those due are analysed."""
        if not self.gate.due(t):
            return None
        return self.analyse(frame, t)

    def analyse(self, frame: np.ndarray, t: float) -> FrameResult:
        detections = self._scaled(self.detector.detect(frame), frame)
        self.frames_analysed += 1
        ended = self.tracker.update(detections, t)
        return self._after_tracking(ended, t)

    def finish(self, t: float) -> FrameResult:
        """The stream ended or was lost: end every track."""
        return self._after_tracking(self.tracker.flush(), t, alive=False)

    def reset(self) -> None:
        self.detector.reset()

    def _after_tracking(self, ended: list[Track], t: float, alive: bool = True) -> FrameResult:
        tracks = [tr for tr in self.tracker.tracks if tr.confirmed] if alive else []
        result = FrameResult(t, tracks=tracks, ended=[tr for tr in ended if tr.confirmed])
        for tr in tracks:
            if not tr.data.get("announced"):
                tr.data["announced"] = True
                result.started.append(tr)
        result.crossings = self.lines.update(self.tracker.tracks if alive else [])
        self.lanes.update(tracks, result.crossings, t)
        result.violations = self.zones.update(tracks, result.ended, t)
        result.congestion = self.congestion.update(self.lanes.snapshot(), t)
        return result

    def _scaled(self, detections: list[Detection], frame: np.ndarray) -> list[Detection]:
        size = self.cfg.frame_size
        height, width = frame.shape[:2]
        if not size or (width, height) == tuple(size):
            return detections
        sx, sy = size[0] / width, size[1] / height
        return [Detection((d.box[0] * sx, d.box[1] * sy, d.box[2] * sx, d.box[3] * sy), d.label, d.score)
                for d in detections]


@dataclass
class FileRun:
    frames_decoded: int
    frames_analysed: int
    totals: dict[str, dict[str, int]]
    crossings: list[Crossing]
    violations: list[ZoneViolation]
    congestion: list[CongestionChange]
    tracks_confirmed: int


def analyse_file(path: str | Path, cfg: CameraConfig, *, analysis_fps: float | None = None,
                 max_frames: int | None = None) -> FileRun:
    """Decode every frame of a file and analyse at the configured rate (tests, benchmark)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise OSError(f"cannot open video {path}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    analysis = CameraAnalysis(cfg, analysis_fps=analysis_fps)
    crossings, violations, congestion, ids = [], [], [], set()
    decoded = 0
    try:
        while max_frames is None or decoded < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            result = analysis.offer(frame, decoded / fps)
            decoded += 1
            if result is not None:
                crossings += result.crossings
                violations += result.violations
                congestion += [result.congestion] if result.congestion else []
                ids.update(tr.id for tr in result.started)
        end = analysis.finish(decoded / fps)
        crossings += end.crossings
        violations += end.violations
    finally:
        capture.release()
    return FileRun(decoded, analysis.frames_analysed, analysis.lines.totals, crossings, violations, congestion,
                   len(ids))


__all__ = ["CameraAnalysis", "FileRun", "FrameResult", "RateGate", "analyse_file"]
