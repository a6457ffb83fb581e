# SPDX-License-Identifier: AGPL-3.0-or-later
"""Thresholds with hysteresis and minimum durations: no alert storms on the line.

A watch raises when a value stays at or beyond ``high`` for at least
``min_duration_s`` and clears only once it has stayed at or below ``low``
for ``clear_duration_s`` (``low < high``). A value dancing between the two
lines changes nothing, and a short spike shorter than the minimum duration
raises nothing. With ``direction = "below"`` the roles swap (raise at or
under ``low``, clear at or over ``high``), for levels that must not fall.

Durations are measured between readings: the reading that completes the
minimum duration raises the event. Limits can be overridden per device in
the rule's configuration (``overrides``, by device id) or in the sensor's
own ``thresholds`` property (``<value>_high`` / ``<value>_low``); the
configuration wins.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ingestion.messages import Reading
from ingestion.rules.base import Rule, RuleConfig
from ingestion.rules.context import BatchContext, Device
from ingestion.rules.episodes import Alert, close, iso, lock_states, open_or_update, parse_iso, save_states

logger = logging.getLogger(__name__)


class LimitOverride(BaseModel):
    """Per-device limits; what is left out comes from the watch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    high: float | None = Field(default=None, description="Raise line for this device.")
    low: float | None = Field(default=None, description="Clear line for this device.")
    min_duration_s: float | None = Field(default=None, ge=0, description="Seconds beyond the raise line first.")
    clear_duration_s: float | None = Field(default=None, ge=0, description="Seconds back past the clear line.")


class Watch(BaseModel):
    """One watched quantity: which readings, which lines, what event."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description="Id of the watch (part of the state key).")
    value: str = Field(min_length=1, description="Key of the reading's values to watch (level_cm, temperature ...).")
    streams: tuple[str, ...] = Field(default=(), description="Only readings of these streams; empty = any.")
    sensor_types: tuple[str, ...] = Field(default=(), description="Only devices of these sensor types; empty = any.")
    high: float = Field(description="Upper line (raise line when direction is 'above').")
    low: float = Field(description="Lower line (clear line when direction is 'above').")
    direction: Literal["above", "below"] = Field(default="above", description="'above': alert on high values; "
                                                 "'below': alert on low values.")
    min_duration_s: float = Field(default=0, ge=0, description="Seconds the value must stay beyond the raise line.")
    clear_duration_s: float = Field(default=0, ge=0, description="Seconds the value must stay past the clear line.")
    category: str = Field(min_length=1, description="Event category (routing): flood, environment ...")
    severity: int = Field(default=3, ge=1, le=5, description="Event severity, 1 (info) to 5 (critical).")
    unit: str = Field(default="", description="Unit shown in titles and payloads.")
    title_vi: str = Field(min_length=1, description="Vietnamese title; the device name is appended.")
    title_en: str = Field(default="", description="English title; the device name is appended.")
    overrides: dict[str, LimitOverride] = Field(default_factory=dict, description="Limits per device id.")

    @model_validator(mode="after")
    def _low_below_high(self) -> Watch:
        if not self.low < self.high:
            raise ValueError(f"watch {self.name}: low ({self.low}) must be below high ({self.high})")
        for device, over in self.overrides.items():
            high = over.high if over.high is not None else self.high
            low = over.low if over.low is not None else self.low
            if not low < high:
                raise ValueError(f"watch {self.name}, device {device}: low ({low}) must be below high ({high})")
        return self


class ThresholdConfig(RuleConfig):
    watches: tuple[Watch, ...] = Field(default=(), description="The watched quantities.")

    @model_validator(mode="after")
    def _unique_names(self) -> ThresholdConfig:
        names = [w.name for w in self.watches]
        if len(set(names)) != len(names):
            raise ValueError("watch names must be unique")
        return self


@dataclass(frozen=True, slots=True)
class Limits:
    high: float
    low: float
    min_duration_s: float
    clear_duration_s: float
    above: bool = True


def limits_for(watch: Watch, device: Device) -> Limits:
    """The watch's limits for one device: config override > device property > watch."""
    props = device.properties.get("thresholds") or {}
    high = props.get(f"{watch.value}_high", watch.high)
    low = props.get(f"{watch.value}_low", watch.low)
    over = watch.overrides.get(device.external_id) or LimitOverride()
    limits = Limits(high=over.high if over.high is not None else float(high),
                    low=over.low if over.low is not None else float(low),
                    min_duration_s=over.min_duration_s if over.min_duration_s is not None else watch.min_duration_s,
                    clear_duration_s=(over.clear_duration_s if over.clear_duration_s is not None
                                      else watch.clear_duration_s),
                    above=watch.direction == "above")
    if not limits.low < limits.high:
        logger.warning("device %s: thresholds low %s ≥ high %s; using the watch's", device.external_id,
                       limits.low, limits.high)
        return Limits(watch.high, watch.low, limits.min_duration_s, limits.clear_duration_s, limits.above)
    return limits


def step(st: dict[str, Any], value: float, at: datetime, lim: Limits) -> str | None:
    """Advance the hysteresis machine by one reading; returns "open", "close" or None.

    Phases: normal → pending (beyond the raise line, waiting for the minimum
    duration) → active → clearing (past the clear line, waiting for the
    clear duration) → normal.

    >>> from datetime import timedelta, timezone
    >>> t0, lim, st = datetime(2026, 1, 1, tzinfo=timezone.utc), Limits(10, 8, 60, 60), {}
    >>> [step(st, v, t0 + timedelta(seconds=30 * i), lim) for i, v in enumerate([11, 9, 11, 11, 11, 9, 7, 9, 7, 7, 7])]
    [None, None, None, None, 'open', None, None, None, None, None, 'close']
    """
    beyond = value >= lim.high if lim.above else value <= lim.low
    back = value <= lim.low if lim.above else value >= lim.high
    phase = st.get("phase", "normal")
    st["value"] = value
    if phase in ("normal", "pending"):
        if not beyond:
            st["phase"] = "normal"
            return None
        if phase == "normal":
            st["since"] = iso(at)
        if (at - parse_iso(st["since"])).total_seconds() >= lim.min_duration_s:
            st.update(phase="active", started=st["since"], peak=value)
            return "open"
        st["phase"] = "pending"
        return None
    st["peak"] = max(st.get("peak", value), value) if lim.above else min(st.get("peak", value), value)
    if not back:
        st["phase"] = "active"
        return None
    if phase == "active":
        st["clear_since"] = iso(at)
    if (at - parse_iso(st["clear_since"])).total_seconds() >= lim.clear_duration_s:
        st["phase"] = "normal"
        return "close"
    st["phase"] = "clearing"
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


class ThresholdRule(Rule):
    name = "threshold"
    config_model = ThresholdConfig
    wants_by_shape = True       # wants() reads kind, stream, value names, position only
    cfg: ThresholdConfig

    def wants(self, reading: Reading) -> bool:
        return any(w.value in reading.values and (not w.streams or reading.stream in w.streams)
                   for w in self.cfg.watches)

    def evaluate(self, readings: Sequence[Reading], ctx: BatchContext) -> None:
        groups: dict[tuple[int, str], list[Reading]] = defaultdict(list)
        for reading in readings:
            device = ctx.device(reading.feature_id)
            for watch in self.cfg.watches:
                if device is not None and self._matches(watch, reading, device):
                    groups[(reading.feature_id, watch.name)].append(reading)
        states = lock_states(self.name, (f"{fid}:{name}" for fid, name in groups))
        watches = {w.name: w for w in self.cfg.watches}
        for (fid, name), group in groups.items():
            self._run(states[f"{fid}:{name}"], watches[name], ctx.device(fid), sorted(group, key=lambda r: r.time))
        save_states(states.values())

    @staticmethod
    def _matches(watch: Watch, reading: Reading, device: Device) -> bool:
        return (watch.value in reading.values and (not watch.streams or reading.stream in watch.streams)
                and (not watch.sensor_types or device.subtype in watch.sensor_types))

    def _alert(self, watch: Watch, lim: Limits, device: Device, reading: Reading, st: dict[str, Any]) -> Alert:
        label = device.label
        title = f"{watch.title_vi}: {label}" + (f" / {watch.title_en}: {label}" if watch.title_en else "")
        return Alert(category=watch.category, severity=watch.severity, title=title, geom=device.position(reading),
                     feature_id=device.id,
                     payload={"watch": watch.name, "device": device.external_id, "value_key": watch.value,
                              "value": st.get("value"), "peak": st.get("peak"), "unit": watch.unit,
                              "high": lim.high, "low": lim.low, "direction": watch.direction,
                              "min_duration_s": lim.min_duration_s, "clear_duration_s": lim.clear_duration_s,
                              "last_reading": iso(reading.time)})

    def _run(self, row, watch: Watch, device: Device, readings: list[Reading]) -> None:
        st, lim = row.state, limits_for(watch, device)
        latest = None
        for reading in readings:
            value = _number(reading.values.get(watch.value))
            if value is None:
                continue   # not a number
            stamp = iso(reading.time)      # once per reading: formatting it was 2 % of a worker on batched payloads
            if st.get("last_time") and stamp <= st["last_time"]:
                continue   # a redelivery, or older than what was already judged
            st["last_time"] = stamp
            change = step(st, value, reading.time, lim)
            if change == "open":
                open_or_update(self, row, self._alert(watch, lim, device, reading, st), parse_iso(st["started"]))
                latest = None
            elif change == "close":
                close(self, row, self._alert(watch, lim, device, reading, st), reading.time)
                latest = None
            elif st["phase"] in ("active", "clearing"):
                latest = reading
        if latest is not None and row.event_id is not None:
            open_or_update(self, row, self._alert(watch, lim, device, latest, st), parse_iso(st["started"]),
                           at=latest.time)
