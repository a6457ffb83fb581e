# SPDX-License-Identifier: AGPL-3.0-or-later
"""Zone rules on tracks: stopping too long in a no-stopping zone, going the wrong way.

Each violation is an episode with a start and an end (``ZoneViolation``),
one per track and zone: a car parked on the shoulder raises one event, and
it ends when the car drives off or its track ends.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cameras.config import Zone
from cameras.count import inside, track_speed_kmh
from cameras.geometry import GroundMapping
from cameras.track import Track

# Without a calibration, "stopped" is judged in pixels per second.
STOPPED_PX_S = 3.0


@dataclass(frozen=True, slots=True)
class ZoneViolation:
    state: str            # "start" | "end"
    zone: str
    rule: str
    track_id: int
    label: str
    t: float
    since: float
    detail: dict


class ZoneRules:
    def __init__(self, zones: Sequence[Zone], mapping: GroundMapping | None = None) -> None:
        self.zones = [(z, np.asarray(z.polygon, dtype=np.float32)) for z in zones]
        self.mapping = mapping

    def update(self, tracks: Sequence[Track], ended: Sequence[Track], t: float) -> list[ZoneViolation]:
        out: list[ZoneViolation] = []
        for track in ended:
            out += self._end_all(track, t)
        for track in tracks:
            if not track.confirmed:
                continue
            for zone, poly in self.zones:
                here = inside(poly, track.foot)
                check = self._no_stopping if zone.rule == "no_stopping" else self._wrong_way
                change = check(zone, track, here, t)
                if change:
                    out.append(change)
        return out

    def _open(self, track: Track) -> dict:
        return track.data.setdefault("violations", {})

    def _no_stopping(self, zone: Zone, track: Track, here: bool, t: float) -> ZoneViolation | None:
        speed = track_speed_kmh(track, self.mapping)
        stopped = here and (speed < zone.stopped_below_kmh if speed is not None else _pixel_speed(track) < STOPPED_PX_S)
        stops = track.data.setdefault("stop_since", {})
        open_ = self._open(track)
        if stopped:
            since = stops.setdefault(zone.name, t)
            if zone.name not in open_ and t - since >= zone.max_stop_s:
                open_[zone.name] = since
                return ZoneViolation("start", zone.name, zone.rule, track.id, track.label, t, since,
                                     {"stopped_s": round(t - since, 1), "max_stop_s": zone.max_stop_s})
            return None
        stops.pop(zone.name, None)
        if zone.name in open_:
            since = open_.pop(zone.name)
            return ZoneViolation("end", zone.name, zone.rule, track.id, track.label, t, since,
                                 {"stopped_s": round(t - since, 1)})
        return None

    def _wrong_way(self, zone: Zone, track: Track, here: bool, t: float) -> ZoneViolation | None:
        open_ = self._open(track)
        if not here:
            if zone.name in open_:
                since = open_.pop(zone.name)
                return ZoneViolation("end", zone.name, zone.rule, track.id, track.label, t, since, {})
            return None
        if zone.name in open_ or track.data.get(f"judged:{zone.name}"):
            return None
        points = [(x, y) for _, x, y in track.history if inside(self.zones_poly(zone), (x, y))]
        if len(points) < 5:
            return None
        dx, dy = points[-1][0] - points[0][0], points[-1][1] - points[0][1]
        travel = math.hypot(dx, dy)
        if travel < zone.min_travel_px:
            return None
        ex, ey = zone.expected_direction
        norm = math.hypot(ex, ey)
        cosine = (dx * ex + dy * ey) / (travel * norm)
        # Every step must agree, not just the end points: a blob that splits or merges (two cars
        # side by side, a car entering at the frame edge) makes one jump backwards, not a journey.
        steps = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(points, points[1:]) if a != b]
        against = sum(1 for sx, sy in steps if sx * ex + sy * ey < 0)
        track.data[f"judged:{zone.name}"] = True
        if cosine < -0.5 and steps and against >= 0.8 * len(steps):
            open_[zone.name] = t
            return ZoneViolation("start", zone.name, zone.rule, track.id, track.label, t, t,
                                 {"cosine": round(cosine, 2), "travel_px": round(travel, 1)})
        return None

    def zones_poly(self, zone: Zone) -> np.ndarray:
        return next(poly for z, poly in self.zones if z.name == zone.name)

    def _end_all(self, track: Track, t: float) -> list[ZoneViolation]:
        rules = {z.name: z.rule for z, _ in self.zones}
        return [ZoneViolation("end", name, rules.get(name, ""), track.id, track.label, t, since, {"track_ended": True})
                for name, since in self._open(track).items()]


def _pixel_speed(track: Track, span_s: float = 1.0) -> float:
    if len(track.history) < 2:
        return math.inf
    last = track.history[-1]
    first = next((h for h in track.history if last[0] - h[0] <= span_s), track.history[0])
    dt = last[0] - first[0]
    return math.hypot(last[1] - first[1], last[2] - first[2]) / dt if dt > 0 else math.inf


__all__ = ["ZoneRules", "ZoneViolation"]
