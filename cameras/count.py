# SPDX-License-Identifier: AGPL-3.0-or-later
"""Counting lines, per-lane flow/occupancy/speed and the camera's congestion level.

Everything here is pure Python over tracks, so it runs the same on
synthetic tracks in unit tests and on the real footage.

>>> side((0, 0), (10, 0), (5, -1)), side((0, 0), (10, 0), (5, 1))
(-1, 1)
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from cameras.config import CameraConfig, Congestion, CountLine, Lane
from cameras.geometry import GroundMapping
from cameras.track import Track

Pixel = tuple[float, float]
DUPLICATE_S = 0.4      # two crossings this close in time and place are one object (see _duplicate)


def side(a: Pixel, b: Pixel, p: Pixel) -> int:
    """Which side of A→B the point is on: −1, 0 or 1 (image y grows downwards)."""
    cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
    return (cross > 0) - (cross < 0)


def segments_cross(a: Pixel, b: Pixel, p: Pixel, q: Pixel) -> bool:
    """True if segment P→Q crosses segment A→B (touching counts once, on the far side).

    >>> segments_cross((0, 0), (10, 0), (5, -1), (5, 1)), segments_cross((0, 0), (10, 0), (15, -1), (15, 1))
    (True, False)
    """
    return side(a, b, p) * side(a, b, q) < 0 and side(p, q, a) * side(p, q, b) <= 0


def inside(polygon: np.ndarray, point: Pixel) -> bool:
    return cv2.pointPolygonTest(polygon, (float(point[0]), float(point[1])), False) >= 0


def track_speed_kmh(track: Track, mapping: GroundMapping | None, span_s: float = 1.0) -> float | None:
    """Ground speed over the last ``span_s`` of the track's foot positions (needs a calibration)."""
    if mapping is None or len(track.history) < 2:
        return None
    last = track.history[-1]
    first = next((h for h in track.history if last[0] - h[0] <= span_s), track.history[0])
    dt = last[0] - first[0]
    if dt <= 0:
        return None
    return mapping.distance_m(first[1:], last[1:]) / dt * 3.6


@dataclass(frozen=True, slots=True)
class Crossing:
    line: str
    direction: str
    track_id: int
    label: str
    t: float
    lane: str | None = None
    speed_kmh: float | None = None


class LineCounter:
    """Counts confirmed tracks crossing each line, once per track and line, per direction."""

    def __init__(self, lines: Sequence[CountLine], lanes: Sequence[Lane] = (), mapping: GroundMapping | None = None):
        self.lines = list(lines)
        self.mapping = mapping
        self.lanes = [(lane, np.asarray(lane.polygon, dtype=np.float32)) for lane in lanes]
        self.totals: dict[str, dict[str, int]] = {ln.name: {ln.forward: 0, ln.backward: 0} for ln in self.lines}
        self._recent: dict[str, deque] = {}

    def update(self, tracks: Sequence[Track]) -> list[Crossing]:
        found = []
        for track in tracks:
            current = _centre(track.box)
            # The last point strictly on one side of each line: a centre landing exactly on the
            # line must not hide the crossing (it is judged when it leaves the line).
            last = track.data.setdefault("line_side", {})
            done = track.data.setdefault("crossed", set())
            pending = track.data.setdefault("pending", [])
            for line in self.lines:
                here = side(*line.points, current)
                if here == 0:
                    continue
                previous = last.get(line.name)
                last[line.name] = (here, current)
                if previous is None or previous[0] == here or line.name in done:
                    continue
                if segments_cross(*line.points, previous[1], current):
                    done.add(line.name)
                    pending.append((line, line.forward if here > 0 else line.backward, track.last_t, current))
            if track.confirmed and pending:
                found += [c for c in (self._count(track, *p) for p in pending) if c is not None]
                pending.clear()
        return found

    def _duplicate(self, line: CountLine, direction: str, t: float, where: Pixel, width: float) -> bool:
        """A second crossing of the same line, same way, at the same spot and moment: one object split in two.

        Background subtraction sometimes cuts a vehicle into two blobs (a
        windscreen, a shadow line); both become tracks and both cross. Two
        real vehicles side by side cross at least a lane width apart.
        """
        recent = self._recent.setdefault(line.name, deque(maxlen=16))
        dup = any(d == direction and t - rt <= DUPLICATE_S and math.dist(rw, where) < 0.6 * max(width, rwidth)
                  for rt, rw, d, rwidth in recent)
        recent.append((t, where, direction, width))
        return dup

    def _count(self, track: Track, line: CountLine, direction: str, t: float, where: Pixel) -> Crossing | None:
        if self._duplicate(line, direction, t, where, track.box[2]):
            return None
        self.totals[line.name][direction] += 1
        lane = next((ln.name for ln, poly in self.lanes if ln.line == line.name and inside(poly, where)), None)
        return Crossing(line.name, direction, track.id, track.label, t, lane, track_speed_kmh(track, self.mapping))


def _centre(box: Sequence[float]) -> Pixel:
    return box[0] + box[2] / 2, box[1] + box[3] / 2


class LaneStats:
    """Flow (vehicles/hour), occupancy (share of analysed frames with a vehicle) and mean speed per lane."""

    def __init__(self, lanes: Sequence[Lane], window_s: float) -> None:
        self.window_s = window_s
        self.lanes = [(lane.name, np.asarray(lane.polygon, dtype=np.float32)) for lane in lanes]
        self._frames: deque[tuple[float, frozenset[str]]] = deque()
        self._crossings: deque[Crossing] = deque()

    def update(self, tracks: Sequence[Track], crossings: Sequence[Crossing], t: float) -> None:
        occupied = frozenset(name for name, poly in self.lanes
                             if any(tr.confirmed and inside(poly, tr.foot) for tr in tracks))
        self._frames.append((t, occupied))
        self._crossings.extend(c for c in crossings if c.lane)
        while self._frames and t - self._frames[0][0] > self.window_s:
            self._frames.popleft()
        while self._crossings and t - self._crossings[0].t > self.window_s:
            self._crossings.popleft()

    def snapshot(self) -> dict[str, dict[str, float | None]]:
        span = max(self._frames[-1][0] - self._frames[0][0], 1e-6) if len(self._frames) > 1 else None
        out = {}
        for name, _ in self.lanes:
            frames = len(self._frames)
            busy = sum(1 for _, occ in self._frames if name in occ)
            lane_cross = [c for c in self._crossings if c.lane == name]
            speeds = [c.speed_kmh for c in lane_cross if c.speed_kmh is not None and math.isfinite(c.speed_kmh)]
            out[name] = {"occupancy": round(busy / frames, 3) if frames else 0.0,
                         "flow_vph": round(len(lane_cross) * 3600 / span, 1) if span else 0.0,
                         "speed_kmh": round(sum(speeds) / len(speeds), 1) if speeds else None,
                         "vehicles": len(lane_cross)}
        return out


@dataclass(frozen=True, slots=True)
class CongestionChange:
    state: str             # "start" | "update" | "end"
    level: int
    peak: int
    t: float
    since: float


class CongestionMonitor:
    """Level 0 free · 1 busy · 2 congested · 3 jammed, with an episode held and cleared with hysteresis."""

    def __init__(self, cfg: Congestion) -> None:
        self.cfg = cfg
        self.level = 0
        self.active_since: float | None = None
        self.peak = 0
        self._above_since: float | None = None
        self._below_since: float | None = None

    def level_of(self, lanes: dict[str, dict[str, float | None]]) -> int:
        if not lanes:
            return 0
        occupancy = max(float(s["occupancy"] or 0) for s in lanes.values())
        level = sum(occupancy >= x for x in (self.cfg.busy_occupancy, self.cfg.congested_occupancy,
                                             self.cfg.jammed_occupancy))
        speeds = [s["speed_kmh"] for s in lanes.values() if s["speed_kmh"] is not None]
        if speeds:
            mean = sum(speeds) / len(speeds)
            if occupancy >= self.cfg.busy_occupancy and mean < self.cfg.slow_kmh:
                level = max(level, 2)
            elif mean >= self.cfg.free_flow_kmh:
                level = min(level, 1)
        return level

    def update(self, lanes: dict[str, dict[str, float | None]], t: float) -> CongestionChange | None:
        self.level = self.level_of(lanes)
        high = self.level >= self.cfg.alert_level
        if self.active_since is None:
            self._above_since = (self._above_since if self._above_since is not None else t) if high else None
            if high and t - self._above_since >= self.cfg.min_duration_s:
                self.active_since, self.peak, self._below_since = self._above_since, self.level, None
                return CongestionChange("start", self.level, self.peak, t, self.active_since)
            return None
        self._below_since = None if high else (self._below_since if self._below_since is not None else t)
        if self._below_since is not None and t - self._below_since >= self.cfg.clear_duration_s:
            change = CongestionChange("end", self.level, self.peak, t, self.active_since)
            self.active_since, self._above_since, self.peak = None, None, 0
            return change
        if self.level > self.peak:
            self.peak = self.level
            return CongestionChange("update", self.level, self.peak, t, self.active_since)
        return None


def build_counters(cfg: CameraConfig, mapping: GroundMapping | None) -> tuple[LineCounter, LaneStats,
                                                                               CongestionMonitor]:
    return (LineCounter(cfg.lines, cfg.lanes, mapping), LaneStats(cfg.lanes, cfg.congestion.window_s),
            CongestionMonitor(cfg.congestion))


__all__ = ["CongestionChange", "CongestionMonitor", "Crossing", "LaneStats", "LineCounter", "build_counters",
           "inside", "segments_cross", "side", "track_speed_kmh"]
