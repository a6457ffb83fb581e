# SPDX-License-Identifier: AGPL-3.0-or-later
"""What each simulated device says: payloads exactly as ``ingestion/schemas.py`` accepts them.

Three behaviours, all driven by one simulated clock (``hour_s`` wall seconds
per simulated hour) so a demo can compress a day into minutes:

* :class:`AirStation` — replays the cleaned Hà Nội PM2.5 series
  (``AirQualityObserved``), one series hour per simulated hour, each station
  from its own offset so stations differ; PM10 derived from a ratio or left out.
* :class:`WaterGauge` — a tidal curve plus flood waves that travel down the
  river and sometimes cross the alarm levels, plus noise (``FloodMonitoring``).
* :class:`FireAlarm` — ``Device`` heartbeats; rarely an ``Alert`` (category
  ``fire``, severity ``critical``, ``alarm: true``), then the same alert with
  ``alarm: false`` and ``validTo`` when it resets.

Every reading of a device gets a strictly increasing timestamp (µs): the
observation table is unique on ``(feature_id, time)``, so two readings of one
device at the same instant would be stored once. No Django here: publisher
processes build these from plain, picklable :class:`DeviceSpec` values.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass

ISO_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One device as the publisher needs it: which behaviour, its id and topic."""

    group: str            # "air" | "water" | "fire"
    device_id: str
    index: int            # position in its group: picks offsets, phases and alarm order
    topic_prefix: str     # "{root}/{city}/sensor/{device_id}/": the stream is appended


@dataclass(frozen=True, slots=True)
class AirParams:
    values: tuple[float, ...]      # the cleaned series (pm25.py)
    stations: int                  # group size, to spread the offsets over the series
    pm10_ratio: float | None


@dataclass(frozen=True, slots=True)
class WaterParams:
    base_level_m: float
    tide_amplitude_m: float
    tide_period_h: float
    flood_every_h: float
    flood_duration_h: float
    flood_peak_m: tuple[float, float]
    noise_m: float
    lag_h: float = 1.0             # a flood wave reaches the next gauge downstream this much later


@dataclass(frozen=True, slots=True)
class FireParams:
    alarm_rate_per_h: float
    reset_after_h: float
    start_alarmed: int


@dataclass(frozen=True, slots=True)
class SimClock:
    """Wall time → simulated hours since the fleet started (shared by every process of a run)."""

    started_at: float              # epoch seconds
    hour_s: float

    def hours(self, now: float) -> float:
        return (now - self.started_at) / self.hour_s


class _Iso:
    """Epoch µs → ``2026-11-24T05:00:00.123456Z``, with the per-second part cached (hot path)."""

    def __init__(self) -> None:
        self._seconds: dict[int, str] = {}

    def __call__(self, micros: int) -> str:
        seconds, fraction = divmod(micros, 1_000_000)
        prefix = self._seconds.get(seconds)
        if prefix is None:
            if len(self._seconds) > ISO_CACHE_SIZE:
                self._seconds.clear()
            prefix = self._seconds[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        return f"{prefix}.{fraction:06d}Z"


iso_micros = _Iso()


def _dumps(items: list[dict]) -> bytes:
    """Rare messages with free text (alerts): the real JSON encoder, Vietnamese kept readable."""
    document = items[0] if len(items) == 1 else items
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _join(items: list[str]) -> bytes:
    """Pre-rendered JSON objects → one payload: an object, or a list when batched.

    The hot streams render their JSON with f-strings (numbers are finite
    floats, keys fixed): ``json.dumps`` was half of the simulator's CPU per
    message.
    """
    if len(items) == 1:
        return items[0].encode()
    return ("[" + ",".join(items) + "]").encode()


class SimDevice:
    """Base: a device's timestamps and its seeded randomness."""

    def __init__(self, spec: DeviceSpec, clock: SimClock, seed: int) -> None:
        self.spec = spec
        self.clock = clock
        self.random = random.Random(f"{seed}:{spec.group}:{spec.index}")
        self._last_us = 0

    def stamps(self, now: float, count: int) -> list[int]:
        """``count`` strictly increasing µs timestamps ending near ``now``, all after the previous ones."""
        first = max(int(now * 1_000_000) - count + 1, self._last_us + 1)
        self._last_us = first + count - 1
        return list(range(first, first + count))

    def message(self, now: float, count: int = 1) -> tuple[str, bytes, int]:
        """(topic, payload, readings) of the next message, ``count`` readings if the stream batches."""
        raise NotImplementedError


class AirStation(SimDevice):
    """Replays the PM2.5 series; with ``count`` > 1 a buffered logger's list of readings."""

    def __init__(self, spec: DeviceSpec, clock: SimClock, seed: int, params: AirParams) -> None:
        super().__init__(spec, clock, seed)
        self.params = params
        # Stations spread evenly over the year, so no two show the same hour.
        self.offset = spec.index * len(params.values) // max(params.stations, 1)
        self.topic = spec.topic_prefix + "air"
        self._step = -1
        self._rendered = ""

    def step(self, now: float) -> int:
        """Index into the series of the hour being replayed at ``now``."""
        return (self.offset + math.floor(self.clock.hours(now))) % len(self.params.values)

    def reading(self, now: float) -> dict[str, float]:
        """The measured values at ``now``: PM2.5 from the series, PM10 derived (if configured)."""
        pm25 = self.params.values[self.step(now)]
        values = {"pm25": pm25}
        if self.params.pm10_ratio:
            values["pm10"] = round(pm25 / self.params.pm10_ratio, 1)
        return values

    def _tail(self, now: float) -> str:
        step = self.step(now)
        if step != self._step:
            values = self.reading(now)
            self._step = step
            self._rendered = "".join(f',"{k}":{v!r}' for k, v in values.items()) + "}"
        return self._rendered

    def message(self, now: float, count: int = 1) -> tuple[str, bytes, int]:
        tail = self._tail(now)
        items = [f'{{"type":"AirQualityObserved","dateObserved":"{iso_micros(us)}"{tail}'
                 for us in self.stamps(now, count)]
        return self.topic, _join(items), count


class WaterGauge(SimDevice):
    """Tide + travelling flood waves + noise, metres above the gauge datum."""

    def __init__(self, spec: DeviceSpec, clock: SimClock, seed: int, params: WaterParams) -> None:
        super().__init__(spec, clock, seed)
        self.params = params
        self.seed = seed
        self.phase = spec.index * 0.35      # the tide arrives a little later at each gauge
        # Waves start at a seeded phase (the same for the whole river), not all at t = 0.
        self.wave_phase = random.Random(f"{seed}:flood-phase").uniform(0, params.flood_every_h)
        self.topic = spec.topic_prefix + "water_level"

    def flood(self, hours: float) -> float:
        """Height of the flood wave passing this gauge ``hours`` into the run (0 between waves)."""
        p = self.params
        local = hours + self.wave_phase - p.flood_every_h - self.spec.index * p.lag_h
        wave, into = divmod(local, p.flood_every_h)
        if local < 0 or into >= p.flood_duration_h:
            return 0.0
        # One wave for the whole river (same seed per wave), so gauges agree.
        peak = random.Random(f"{self.seed}:flood:{int(wave)}").uniform(*p.flood_peak_m)
        return peak * math.sin(math.pi * into / p.flood_duration_h) ** 2

    def level(self, now: float) -> float:
        """The noiseless level at ``now``: base + tide + flood."""
        p = self.params
        hours = self.clock.hours(now)
        tide = p.tide_amplitude_m * math.sin(2 * math.pi * hours / p.tide_period_h + self.phase)
        return p.base_level_m + tide + self.flood(hours)

    def message(self, now: float, count: int = 1) -> tuple[str, bytes, int]:
        level = self.level(now)
        noise = self.params.noise_m
        gauss = self.random.gauss
        items = [f'{{"type":"FloodMonitoring","observationDateTime":"{iso_micros(us)}",'
                 f'"currentLevel":{round(level + gauss(0, noise), 3)!r}}}' for us in self.stamps(now, count)]
        return self.topic, _join(items), count


class FireAlarm(SimDevice):
    """A fire panel: heartbeats on ``status``; alarm and reset on ``alert``."""

    CATEGORY = "fire"

    def __init__(self, spec: DeviceSpec, clock: SimClock, seed: int, params: FireParams) -> None:
        super().__init__(spec, clock, seed)
        self.params = params
        self.status_topic = spec.topic_prefix + "status"
        self.alert_topic = spec.topic_prefix + "alert"
        self.alarm_since_us: int | None = None
        self.alarm_until_h = 0.0
        self._last_h: float | None = None

    def _goes_off(self, hours: float) -> bool:
        """Poisson arrivals at ``alarm_rate_per_h``: the chance grows with the time since the last message."""
        first = self._last_h is None
        elapsed = 0.0 if first else max(hours - self._last_h, 0.0)
        self._last_h = hours
        if first and self.spec.index < self.params.start_alarmed:
            return True
        chance = 1 - math.exp(-self.params.alarm_rate_per_h * elapsed)
        return chance > 0 and self.random.random() < chance

    def alert(self, us: int, cleared: bool) -> dict:
        """The Smart Data Model ``Alert``; the reset repeats it with ``"alarm": false`` and ``validTo``.

        ``alarm`` is CityTwin's extension of the model (``schemas.Alert``):
        the fire rule opens its event on ``true`` and ends it on ``false``.
        ``dateIssued`` is this message's own time, not the alarm's start: it
        is the reading's time, and the observation table keeps one reading
        per device and instant, so a reset stamped like its alarm would be
        dropped as a duplicate.
        """
        item = {"type": "Alert", "dateIssued": iso_micros(us), "category": self.CATEGORY,
                "subCategory": "fireAlarm", "severity": "critical",
                "description": "Báo cháy tự động / automatic fire alarm",
                "validFrom": iso_micros(self.alarm_since_us or us), "alarm": not cleared}
        if cleared:
            item["validTo"] = iso_micros(us)
        return item

    def message(self, now: float, count: int = 1) -> tuple[str, bytes, int]:
        hours = self.clock.hours(now)
        active = self.alarm_since_us is not None
        if active and hours >= self.alarm_until_h:
            [us] = self.stamps(now, 1)
            payload = _dumps([self.alert(us, cleared=True)])
            self.alarm_since_us = None
            self._last_h = hours
            return self.alert_topic, payload, 1
        if not active and self._goes_off(hours):
            [us] = self.stamps(now, 1)
            self.alarm_since_us, self.alarm_until_h = us, hours + self.params.reset_after_h
            return self.alert_topic, _dumps([self.alert(us, cleared=False)]), 1
        if active:
            self._last_h = hours
        battery = round(0.8 + 0.2 * self.random.random(), 2)
        items = [f'{{"type":"Device","dateLastValueReported":"{iso_micros(us)}","deviceState":"active",'
                 f'"batteryLevel":{battery!r}}}' for us in self.stamps(now, count)]
        return self.status_topic, _join(items), count


@dataclass(frozen=True, slots=True)
class Behaviours:
    """Everything a publisher process needs to build its devices (picklable)."""

    clock: SimClock
    seed: int
    air: AirParams | None = None
    water: WaterParams | None = None
    fire: FireParams | None = None


def build_device(spec: DeviceSpec, behaviours: Behaviours) -> SimDevice:
    """The behaviour object of one device."""
    clock, seed = behaviours.clock, behaviours.seed
    if spec.group == "air" and behaviours.air is not None:
        return AirStation(spec, clock, seed, behaviours.air)
    if spec.group == "water" and behaviours.water is not None:
        return WaterGauge(spec, clock, seed, behaviours.water)
    if spec.group == "fire" and behaviours.fire is not None:
        return FireAlarm(spec, clock, seed, behaviours.fire)
    raise ValueError(f"no behaviour for device group {spec.group!r}")


__all__ = ["AirParams", "AirStation", "Behaviours", "DeviceSpec", "FireAlarm", "FireParams", "SimClock",
           "SimDevice", "WaterGauge", "WaterParams", "build_device", "iso_micros"]
