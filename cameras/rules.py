# SPDX-License-Identifier: AGPL-3.0-or-later
"""The ingestion rule for camera ``detection`` messages: each lifecycle becomes one geo-event.

Camera workers publish like any device; the ingestion worker stores the
messages and hands them to the rule engine, where this rule (registered
from ``CamerasConfig.ready`` into ``ingestion.rules``' registry, so
ingestion's code does not change) turns each ``new → update → end``
lifecycle into one event with the stable key ``camera:<feature>:<id>:…``:
opened on ``new``, updated on ``update``, resolved on ``end``. The event
sits at the object's ground position (the homography's answer) when the
message has one, else at the camera.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime

from django.contrib.gis.geos import Point
from pydantic import Field

from ingestion.messages import Reading
from ingestion.models import RuleState
from ingestion.rules import base
from ingestion.rules.base import Rule, RuleConfig
from ingestion.rules.context import BatchContext, Device
from ingestion.rules.episodes import Alert, close, iso, lock_states, open_or_update, save_states

logger = logging.getLogger(__name__)

TITLES: Mapping[str, tuple[str, str]] = {
    "vehicle": ("Phương tiện", "Vehicle"),
    "person": ("Người", "Person"),
    "congestion": ("Ùn tắc giao thông", "Traffic congestion"),
    "no_stopping": ("Dừng đỗ sai quy định", "Stopping in a no-stopping zone"),
    "wrong_way": ("Đi ngược chiều", "Wrong-way driving"),
    "plate_watchlist": ("Biển số trong danh sách theo dõi", "Watch-listed plate"),
    "camera_stream": ("Tín hiệu camera gián đoạn", "Camera stream degraded"),
}


class CameraRuleConfig(RuleConfig):
    detection_events: bool = Field(default=True, description="Every tracked object is a (severity 1) event, "
                                   "resolved when the track ends; off: only alerts become events.")
    detection_category: str = Field(default="traffic_detection", description="Category of plain detections.")
    severities: dict[str, int] = Field(default_factory=lambda: {
        "traffic_detection": 1, "congestion": 3, "no_stopping": 3, "wrong_way": 4, "plate_watchlist": 4,
        "camera_stream": 2}, description="Severity per category when the message carries none.")


class CameraRule(Rule):
    name = "camera"
    config_model = CameraRuleConfig
    cfg: CameraRuleConfig

    def wants(self, reading: Reading) -> bool:
        return reading.kind == "camera" and reading.stream == "detection" and isinstance(
            reading.values.get("after"), Mapping)

    def evaluate(self, readings: Sequence[Reading], ctx: BatchContext) -> None:
        groups: dict[str, list[Reading]] = defaultdict(list)
        for reading in readings:
            after = reading.values["after"]
            if after.get("category") or self.cfg.detection_events:
                groups[f"{reading.feature_id}:{after['id']}"].append(reading)
        states = lock_states(self.name, groups)
        for subject, group in groups.items():
            device = ctx.device(group[0].feature_id)
            if device is not None:
                self._step(states[subject], device, sorted(group, key=lambda r: r.time))
        save_states(states.values())
        # An ended object needs no memory: without this a busy road leaves a row per vehicle forever.
        # (A redelivery of its ``new`` after this only updates the resolved event; it cannot reopen it.)
        done = [row.pk for row in states.values() if row.state.get("ended")]
        if done:
            RuleState.objects.filter(pk__in=done).delete()

    def _step(self, row, device: Device, readings: list[Reading]) -> None:
        st = row.state
        for reading in readings:
            if st.get("last_time") and iso(reading.time) <= st["last_time"]:
                continue   # a redelivery must not re-open an ended object
            st["last_time"] = iso(reading.time)
            after = reading.values["after"]
            alert = self._alert(device, reading, after)
            started = _parse_time(after.get("start_time")) or reading.time
            if reading.values.get("type") == "end":
                if st.get("open"):
                    close(self, row, alert, reading.time, note="Kết thúc / ended")
                st["open"] = False
                st["ended"] = True
            elif not st.get("ended"):
                open_or_update(self, row, alert, started)
                st["open"] = True

    def _alert(self, device: Device, reading: Reading, after: Mapping) -> Alert:
        category = after.get("category") or self.cfg.detection_category
        kind = after.get("category") or after.get("label") or "vehicle"
        vi, en = TITLES.get(kind, (kind, kind))
        ground = after.get("ground")
        geom = Point(*ground["coordinates"][:2], srid=4326) if ground else device.position(reading)
        severity = after.get("severity") or self.cfg.severities.get(category, 2)
        return Alert(category=category, severity=severity, title=f"{vi}: {device.label} / {en}: {device.label}",
                     geom=geom, feature_id=device.id,
                     payload={"camera": device.external_id, "lifecycle": reading.values.get("type"),
                              "object": dict(after)})


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def register_camera_rules() -> None:
    base.register("camera", "cameras.rules.CameraRule")


__all__ = ["CameraRule", "CameraRuleConfig", "register_camera_rules"]
