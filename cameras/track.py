# SPDX-License-Identifier: AGPL-3.0-or-later
"""Multi-object tracking with stable ids: IoU, then centroid distance, matched by the Hungarian method.

Each track predicts its box with a constant velocity, so an object that
moved further than its own size between two analysed frames (a fast car at
a low analysis rate) still overlaps its prediction. The cost of a pair is
``1 − IoU`` when the prediction overlaps, otherwise ``1 + distance/size``
within a gate of about one object size; the assignment minimising the total
cost is SciPy's ``linear_sum_assignment`` (greedy lowest cost first when
SciPy is missing). A track is *confirmed* after ``min_hits`` detections
(publishing starts then) and ends after ``max_lost_s`` without one.

>>> t = Tracker(min_hits=2, max_lost_s=1.0)
>>> from cameras.detect.base import Detection
>>> a = t.update([Detection((10, 10, 20, 20))], 0.0)
>>> b = t.update([Detection((14, 10, 20, 20))], 0.1)
>>> [(tr.id, tr.confirmed) for tr in t.tracks]
[(1, True)]
"""
from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cameras.detect.base import Detection

try:   # SciPy is a declared dependency; the greedy fallback keeps the worker alive without it.
    from scipy.optimize import linear_sum_assignment
except ImportError:   # pragma: no cover
    linear_sum_assignment = None

INF = 1e9


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes.

    >>> iou((0, 0, 10, 10), (5, 0, 10, 10))
    0.3333333333333333
    """
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = min(ax2, bx2) - max(a[0], b[0])
    h = min(ay2, by2) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@dataclass
class Track:
    id: int
    label: str
    box: tuple[float, float, float, float]
    first_t: float
    last_t: float
    hits: int = 1
    confirmed: bool = False
    velocity: tuple[float, float] = (0.0, 0.0)          # pixels per second (box centre)
    history: deque = field(default_factory=lambda: deque(maxlen=64))   # (t, foot x, foot y)
    score: float = 1.0
    data: dict = field(default_factory=dict)            # per-track memory of counters and rules

    @property
    def foot(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2, y + h

    def predicted(self, t: float) -> tuple[float, float, float, float]:
        dt = t - self.last_t
        x, y, w, h = self.box
        return x + self.velocity[0] * dt, y + self.velocity[1] * dt, w, h


class Tracker:
    def __init__(self, *, min_hits: int = 3, max_lost_s: float = 0.6) -> None:
        self.min_hits = min_hits
        self.max_lost_s = max_lost_s
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)

    def update(self, detections: Sequence[Detection], t: float) -> list[Track]:
        """Match ``detections`` at time ``t`` (seconds); returns the tracks that ended."""
        pairs = self._assign(detections, t)
        matched_tracks, matched_dets = set(), set()
        for ti, di in pairs:
            self._hit(self.tracks[ti], detections[di], t)
            matched_tracks.add(ti)
            matched_dets.add(di)
        ended = [tr for i, tr in enumerate(self.tracks) if i not in matched_tracks and t - tr.last_t > self.max_lost_s]
        self.tracks = [tr for tr in self.tracks if tr not in ended]
        for di, det in enumerate(detections):
            if di not in matched_dets:
                track = Track(next(self._ids), det.label, det.box, t, t, score=det.score,
                              confirmed=self.min_hits <= 1)
                track.history.append((t, *track.foot))
                self.tracks.append(track)
        return ended

    def flush(self) -> list[Track]:
        """End every track (the stream ended)."""
        ended, self.tracks = self.tracks, []
        return ended

    def _hit(self, track: Track, det: Detection, t: float) -> None:
        dt = t - track.last_t
        if dt > 0:
            (ox, oy), (nx, ny) = _centre(track.box), det.centre
            vx, vy = (nx - ox) / dt, (ny - oy) / dt
            # Smooth: a box that grows as a car enters the frame jitters its centre.
            track.velocity = (0.5 * track.velocity[0] + 0.5 * vx, 0.5 * track.velocity[1] + 0.5 * vy) \
                if track.hits > 1 else (vx, vy)
        track.box, track.last_t, track.hits = det.box, t, track.hits + 1
        track.score = max(track.score, det.score)
        track.history.append((t, *track.foot))
        if track.hits >= self.min_hits:
            track.confirmed = True

    def _assign(self, detections: Sequence[Detection], t: float) -> list[tuple[int, int]]:
        if not self.tracks or not detections:
            return []
        cost = np.full((len(self.tracks), len(detections)), INF)
        for ti, track in enumerate(self.tracks):
            pred = track.predicted(t)
            size = max(math.hypot(pred[2], pred[3]), 1.0)
            pc = _centre(pred)
            for di, det in enumerate(detections):
                overlap = iou(pred, det.box)
                if overlap > 0.05:
                    cost[ti, di] = 1.0 - overlap
                else:
                    dist = math.dist(pc, det.centre)
                    if dist < 0.8 * size:
                        cost[ti, di] = 1.0 + dist / size
        return [(ti, di) for ti, di in _solve(cost) if cost[ti, di] < INF]


def _centre(box: Sequence[float]) -> tuple[float, float]:
    return box[0] + box[2] / 2, box[1] + box[3] / 2


def _solve(cost: np.ndarray) -> list[tuple[int, int]]:
    if linear_sum_assignment is not None:
        rows, cols = linear_sum_assignment(np.minimum(cost, INF))
        return list(zip(rows.tolist(), cols.tolist()))
    pairs, used_r, used_c = [], set(), set()
    for flat in np.argsort(cost, axis=None):
        r, c = divmod(int(flat), cost.shape[1])
        if r not in used_r and c not in used_c and cost[r, c] < INF:
            pairs.append((r, c))
            used_r.add(r)
            used_c.add(c)
    return pairs


__all__ = ["Track", "Tracker", "iou"]
