# SPDX-License-Identifier: AGPL-3.0-or-later
"""Fire alarm: an alarm reading is an immediate critical event; the reset ends it.

No threshold, no duration: a fire panel or smoke detector has already
decided. The event is raised on the first alarm reading, updated by later
ones (one event per alarm, not one per message) and resolved when the
device reports its reset. It is routed with category ``fire``, which the
city's chain sends to the fire and rescue police.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field

from ingestion.messages import Reading
from ingestion.rules.base import Rule, RuleConfig
from ingestion.rules.context import BatchContext, Device
from ingestion.rules.episodes import Alert, close, iso, lock_states, open_or_update, parse_iso, save_states

logger = logging.getLogger(__name__)

_ON = {"1", "true", "on", "yes", "alarm", "fire", "smoke", "active"}
_OFF = {"0", "false", "off", "no", "normal", "reset", "clear", "cleared", "ok", "idle"}


class FireConfig(RuleConfig):
    streams: tuple[str, ...] = Field(default=("fire", "fire_alarm", "smoke"), description="Streams whose readings "
                                     "are alarm states.")
    sensor_types: tuple[str, ...] = Field(default=("fire_alarm", "smoke"), description="Sensor types whose "
                                          "readings on any stream are alarm states.")
    alarm_keys: tuple[str, ...] = Field(default=("alarm", "fire", "smoke"), min_length=1, description="Keys of "
                                        "the reading's values holding the alarm state, tried in order.")
    category: str = Field(default="fire", min_length=1, description="Event category (routing).")
    severity: int = Field(default=5, ge=1, le=5, description="Event severity; 5 = critical.")
    title_vi: str = Field(default="Báo cháy", description="Vietnamese title; the device name is appended.")
    title_en: str = Field(default="Fire alarm", description="English title; the device name is appended.")


def alarm_state(values: Mapping[str, Any], keys: Sequence[str]) -> bool | None:
    """True for an alarm, False for a reset, None when the reading says neither.

    >>> alarm_state({"alarm": True}, ["alarm"]), alarm_state({"alarm": "RESET"}, ["alarm"])
    (True, False)
    >>> alarm_state({"battery": 80}, ["alarm"]) is None, alarm_state({"smoke": 1}, ["alarm", "smoke"])
    (True, True)
    """
    for key in keys:
        if key not in values:
            continue
        value = values[key]
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return value != 0
        text = str(value).strip().lower()
        if text in _ON:
            return True
        if text in _OFF:
            return False
    return None


class FireRule(Rule):
    name = "fire"
    config_model = FireConfig
    priority = 0
    wants_by_shape = True       # wants() reads kind, stream, value names, position only
    cfg: FireConfig

    def wants(self, reading: Reading) -> bool:
        return reading.stream in self.cfg.streams or any(k in reading.values for k in self.cfg.alarm_keys)

    def _is_fire_device(self, reading: Reading, device: Device) -> bool:
        return reading.stream in self.cfg.streams or device.subtype in self.cfg.sensor_types

    def evaluate(self, readings: Sequence[Reading], ctx: BatchContext) -> None:
        groups: dict[int, list[Reading]] = defaultdict(list)
        for reading in readings:
            device = ctx.device(reading.feature_id)
            if device is not None and self._is_fire_device(reading, device):
                groups[reading.feature_id].append(reading)
        states = lock_states(self.name, (str(fid) for fid in groups))
        for fid, group in groups.items():
            self._step(states[str(fid)], ctx.device(fid), sorted(group, key=lambda r: r.time))
        save_states(states.values())

    def _alert(self, device: Device, reading: Reading, state: dict) -> Alert:
        return Alert(category=self.cfg.category, severity=self.cfg.severity,
                     title=f"{self.cfg.title_vi}: {device.label} / {self.cfg.title_en}: {device.label}",
                     geom=device.position(reading), feature_id=device.id,
                     payload={"device": device.external_id, "alarm_readings": state.get("count", 0),
                              "last_alarm": state.get("last_alarm"), "values": dict(reading.values)})

    def _step(self, row, device: Device, readings: list[Reading]) -> None:
        st = row.state
        latest = None
        for reading in readings:
            if st.get("last_time") and iso(reading.time) <= st["last_time"]:
                continue   # a redelivery or a stale reading must not re-open a reset alarm
            alarm = alarm_state(reading.values, self.cfg.alarm_keys)
            if alarm is None:
                continue
            st["last_time"] = iso(reading.time)
            if alarm:
                st["count"] = st.get("count", 0) + 1
                st["last_alarm"] = iso(reading.time)
                latest = reading if st.get("active") else None   # later alarms: one update per batch
                if not st.get("active"):
                    st.update(active=True, since=iso(reading.time), count=1)
                    open_or_update(self, row, self._alert(device, reading, st), reading.time)
            elif st.get("active"):
                close(self, row, self._alert(device, reading, st), reading.time, note="Đã hết báo cháy / alarm reset")
                st.update(active=False, count=0)
                latest = None
        if latest is not None and st.get("active"):
            open_or_update(self, row, self._alert(device, latest, st), parse_iso(st["since"]), at=latest.time)
