# SPDX-License-Identifier: AGPL-3.0-or-later
"""A camera's analytics configuration: data stored beside the camera feature.

It lives in the camera's ``properties.config`` (``twin.kinds.CameraProps``),
so the layers API serves it with the camera and an operator edits it like
any property. Every point is in pixels of the camera's full-resolution frame,
``[x, y]`` with y growing downwards. :class:`CameraConfig` validates it when
cameras are loaded and when the worker starts; unknown keys are refused.

>>> cfg = CameraConfig.model_validate({"lines": [{"name": "l1", "points": [[0, 10], [100, 10]]}]})
>>> cfg.lines[0].forward, cfg.analytics.analysis_fps
('forward', 12.5)
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Pixel = tuple[float, float]
LonLat = tuple[float, float]


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Calibration(_Cfg):
    """Four (or more) image points with their known ground positions → a homography."""

    image_points: list[Pixel] = Field(min_length=4, description="Pixels [x, y] in the full-resolution frame.")
    ground_points: list[LonLat] = Field(min_length=4, description="The same points on the ground, [lon, lat].")
    method: str = Field(default="", description="How the ground points were obtained (survey, lane marks ...).")

    @model_validator(mode="after")
    def _same_length(self) -> Calibration:
        if len(self.image_points) != len(self.ground_points):
            raise ValueError("image_points and ground_points must pair up one to one")
        return self


class CountLine(_Cfg):
    """A virtual line A→B; crossing it from its left to its right is ``forward``."""

    name: str = Field(min_length=1, max_length=60, description="Line id (unique per camera).")
    points: tuple[Pixel, Pixel] = Field(description="Endpoints A and B, pixels.")
    forward: str = Field(default="forward", description="Label of left→right crossings (seen from A looking at B).")
    backward: str = Field(default="backward", description="Label of right→left crossings.")


class Lane(_Cfg):
    """A lane area for flow, occupancy and average speed."""

    name: str = Field(min_length=1, max_length=60)
    polygon: list[Pixel] = Field(min_length=3, description="Lane area, pixels.")
    line: str | None = Field(default=None, description="Counting line whose crossings inside the lane are its flow.")


class Zone(_Cfg):
    """An area with a rule: ``no_stopping`` (dwell) or ``wrong_way`` (direction)."""

    name: str = Field(min_length=1, max_length=60)
    polygon: list[Pixel] = Field(min_length=3)
    rule: Literal["no_stopping", "wrong_way"]
    max_stop_s: float = Field(default=30.0, gt=0, description="no_stopping: longest allowed stop.")
    stopped_below_kmh: float = Field(default=3.0, ge=0, description="no_stopping: slower than this is stopped.")
    expected_direction: Pixel | None = Field(default=None, description="wrong_way: the lawful direction of travel "
                                             "as an image vector [dx, dy] (e.g. [0, -1]: up the image).")
    min_travel_px: float = Field(default=25.0, gt=0, description="wrong_way: travel needed before judging.")

    @model_validator(mode="after")
    def _direction(self) -> Zone:
        if self.rule == "wrong_way" and self.expected_direction is None:
            raise ValueError("a wrong_way zone needs expected_direction")
        return self


class Congestion(_Cfg):
    """Congestion level from flow, occupancy and speed over a sliding window."""

    window_s: float = Field(default=60.0, gt=0)
    busy_occupancy: float = Field(default=0.15, ge=0, le=1, description="Level 1 from this occupancy.")
    congested_occupancy: float = Field(default=0.35, ge=0, le=1, description="Level 2 from this occupancy.")
    jammed_occupancy: float = Field(default=0.6, ge=0, le=1, description="Level 3 from this occupancy.")
    slow_kmh: float = Field(default=20.0, gt=0, description="With traffic present, an average slower than this "
                            "raises the level to at least 2.")
    free_flow_kmh: float = Field(default=50.0, gt=0, description="An average at least this fast caps the level "
                                 "at 1: a long lane zone on a busy road is often occupied while traffic flows.")
    alert_level: int = Field(default=2, ge=1, le=3, description="An event opens at this level …")
    min_duration_s: float = Field(default=20.0, ge=0, description="… held this long …")
    clear_duration_s: float = Field(default=30.0, ge=0, description="… and ends below it after this long.")


class Analytics(_Cfg):
    """How the worker analyses the stream."""

    detector: str = Field(default="motion", description="Detector name in cameras.detect's registry.")
    analysis_fps: float = Field(default=12.5, gt=0, le=60, description="Frames analysed per second; every frame "
                                "is still decoded.")
    motion_width: int = Field(default=320, ge=64, le=1920, description="Width of the downscaled motion frame.")
    min_area_px: float = Field(default=60.0, ge=1, description="Smallest blob, in full-resolution pixels².")
    max_lost_s: float = Field(default=0.6, gt=0, description="A track unseen this long ends.")
    min_hits: int = Field(default=3, ge=1, description="Detections before a track is confirmed (published).")
    update_interval_s: float = Field(default=2.0, gt=0, description="Least time between two `update` messages "
                                     "of one track.")
    labels: list[str] = Field(default_factory=lambda: ["vehicle"], description="Labels the detector emits.")
    stall_timeout_s: float = Field(default=5.0, gt=0, description="No frame this long → degraded, reconnect.")
    offline_after_s: float = Field(default=30.0, gt=0, description="Unreadable this long → offline.")
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    realtime: bool = Field(default=True, description="Pace files at their frame rate (false: as fast as possible).")
    loop: bool = Field(default=False, description="Start a file again at its end (demo).")
    snapshots: bool = Field(default=True, description="Attach a blurred JPEG snapshot to events.")
    snapshot_privacy: Literal["background", "faces"] = Field(default="background", description="background: only "
                                                             "the event's object stays sharp; faces: blur faces "
                                                             "(Haar cascade) and other objects (slow).")


class Plates(_Cfg):
    """Licence plates: localisation, pattern check and a watch list (docs/cameras.md)."""

    enabled: bool = False
    watch_list: list[str] = Field(default_factory=list, description="Plates that raise an event when read.")
    max_reads: int = Field(default=3, ge=1, le=20, description="Reads per track at most (each costs 20–60 ms); "
                           "reading stops at the first valid plate.")
    read_interval_s: float = Field(default=0.5, ge=0, description="Least stream time between two reads of one "
                                   "track (the vehicle comes closer, the plate grows).")
    min_vehicle_px: int = Field(default=80, ge=1, description="Vehicles narrower than this, in frame pixels, are "
                                "not read: their plate is too small to be legible.")


class CameraConfig(_Cfg):
    """Everything the worker needs beyond the camera's position and stream."""

    frame_size: tuple[int, int] | None = Field(default=None, description="[width, height] the pixels refer to; "
                                               "frames of another size are scaled to it.")
    calibration: Calibration | None = None
    lines: list[CountLine] = Field(default_factory=list)
    lanes: list[Lane] = Field(default_factory=list)
    zones: list[Zone] = Field(default_factory=list)
    congestion: Congestion = Field(default_factory=Congestion)
    analytics: Analytics = Field(default_factory=Analytics)
    plates: Plates = Field(default_factory=Plates)

    @model_validator(mode="after")
    def _names(self) -> CameraConfig:
        for what, items in (("line", self.lines), ("lane", self.lanes), ("zone", self.zones)):
            names = [i.name for i in items]
            if len(names) != len(set(names)):
                raise ValueError(f"{what} names must be unique")
        line_names = {line.name for line in self.lines}
        for lane in self.lanes:
            if lane.line and lane.line not in line_names:
                raise ValueError(f"lane {lane.name!r} names unknown line {lane.line!r}")
        return self


__all__ = ["Analytics", "Calibration", "CameraConfig", "Congestion", "CountLine", "Lane", "Plates", "Zone"]
