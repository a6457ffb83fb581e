# SPDX-License-Identifier: AGPL-3.0-or-later
"""Air quality: hourly AQI per station, an alert while the category is bad.

Readings (PM2.5 and/or PM10, µg/m³) are averaged per clock hour (UTC);
each hour gets the hourly AQI of the configured method (``aqi.py``: VN_AQI
by default) from the NowCast of the last 12 hourly means. The current,
still filling hour counts as the latest hour, so the index follows the
data as it arrives.

An *episode* begins in the first hour whose category reaches
``alert_from`` (default: index 2, "Kém" / Poor); its event is updated every
hour while the episode lasts, and its severity rises each time the
category worsens past the worst seen so far (the "worsened" list records
when). The episode ends after ``clear_after_hours`` consecutive hours below
``alert_from``. Hours without enough data (NowCast needs two of the three
latest hours) change nothing. A reading not newer than the newest one
already counted is ignored: a redelivered message must not count twice in
an hourly mean, and past judgements are never rewritten.
"""
from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from ingestion.messages import Reading
from ingestion.rules.aqi import NOWCAST_HOURS, AqiResult, get_method, hourly_aqi
from ingestion.rules.base import Rule, RuleConfig
from ingestion.rules.context import BatchContext, Device
from ingestion.rules.episodes import Alert, close, iso, lock_states, open_or_update, parse_iso, save_states

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)


class AirQualityConfig(RuleConfig):
    method: Literal["vn_aqi", "us_epa_2024", "us_epa_2012"] = Field(
        default="vn_aqi", description="AQI method: Việt Nam's VN_AQI (Decision 1459/QĐ-TCMT), or the US-EPA AQI "
        "with the 2024 or the 2012 PM2.5 breakpoints.")
    streams: tuple[str, ...] = Field(default=("air", "air_quality"), description="Streams carrying PM readings.")
    pollutants: dict[Literal["pm25", "pm10"], tuple[str, ...]] = Field(
        default_factory=lambda: {"pm25": ("pm25", "pm2_5", "pm2.5"), "pm10": ("pm10",)},
        description="Pollutant → keys of the reading's values holding it (µg/m³), tried in order.")
    alert_from: int = Field(default=2, ge=1, le=5, description="Category index that starts an episode: 1 Trung "
                            "bình, 2 Kém, 3 Xấu, 4 Rất xấu, 5 Nguy hại (US-EPA: the same positions).")
    clear_after_hours: int = Field(default=2, ge=1, le=24, description="Consecutive hours below alert_from that "
                                   "end an episode.")
    severity_by_category: tuple[int, int, int, int, int, int] = Field(
        default=(1, 1, 2, 3, 4, 5), description="Event severity for each category index 0..5 (worst of the episode).")
    category: str = Field(default="air_quality", min_length=1, description="Event category (routing).")
    # Why 300 and not the rules' usual 10: the index is hourly. Within an hour each reading only moves the
    # running mean, so the event's AQI figure drifts by a point or two; rewriting and pushing it every 10 s
    # per station was noise to operators and, with a third of 200 stations in alert, the largest share of
    # a worker's time under live load (bench/ingest.py, 25 Nov). A worse category is still written at once.
    update_interval_s: float = Field(
        default=300.0, ge=0, le=3600,
        description="While an episode lasts, write a new AQI figure (same severity) at most this often, in seconds "
                    "of reading time; a worse category is written at once. 0: on every batch.")

    @model_validator(mode="after")
    def _severities_in_range(self) -> AirQualityConfig:
        if not all(1 <= s <= 5 for s in self.severity_by_category):
            raise ValueError("severity_by_category values must be 1..5")
        return self


@functools.lru_cache(maxsize=64)
def _window_keys(hour: datetime) -> tuple[str, ...]:
    """The keys of the 12 hours ending at ``hour``: every station of a batch shares them, so format them once."""
    return tuple(iso(hour - i * HOUR) for i in range(NOWCAST_HOURS))


@functools.lru_cache(maxsize=256)
def _hour_key(hour: datetime) -> str:
    """:func:`iso` of a clock hour: every station of every batch formats the same few."""
    return iso(hour)


def series(hours: Mapping[str, Mapping[str, list[float]]], pollutant: str, hour: datetime) -> list[float | None]:
    """The 12 hourly means ending at ``hour``, most recent first (None = no data)."""
    out: list[float | None] = []
    for key in _window_keys(hour):
        total = hours.get(key, {}).get(pollutant)
        out.append(total[0] / total[1] if total and total[1] else None)
    return out


def _concentration(values: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    for key in keys:
        value = values.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 and value == value:
            return float(value)
    return None   # absent, negative (the -999 of missing-data conventions) or not a number


class AirQualityRule(Rule):
    name = "air_quality"
    config_model = AirQualityConfig
    priority = 90
    wants_by_shape = True       # wants() reads kind, stream, value names, position only
    cfg: AirQualityConfig

    def __init__(self, cfg: AirQualityConfig, router) -> None:
        super().__init__(cfg, router)
        self.method = get_method(cfg.method)

    def wants(self, reading: Reading) -> bool:
        return reading.stream in self.cfg.streams

    def evaluate(self, readings: Sequence[Reading], ctx: BatchContext) -> None:
        groups: dict[int, list[Reading]] = defaultdict(list)
        for reading in readings:
            if ctx.device(reading.feature_id) is not None:
                groups[reading.feature_id].append(reading)
        states = lock_states(self.name, (str(fid) for fid in groups))
        for fid, group in groups.items():
            self._station(states[str(fid)], ctx.device(fid), group)
        save_states(states.values())

    def _station(self, row, device: Device, readings: list[Reading]) -> None:
        st = row.state
        hours = st.setdefault("hours", {})
        touched: set[str] = set()
        for key, sums in self._hourly_sums(st, readings).items():
            touched.add(key)
            for pollutant, (total, count) in sums.items():
                running = hours.setdefault(key, {}).setdefault(pollutant, [0.0, 0])
                running[0] += total
                running[1] += count
        update = False
        for key in sorted(touched):
            result = hourly_aqi(self.method, {p: series(hours, p, parse_iso(key)) for p in self.cfg.pollutants})
            if result is not None:
                update = self._judge(row, device, parse_iso(key), result) == "hold"
        if update and row.event_id is not None:
            open_or_update(self, row, self._alert(device, st), parse_iso(st["started"]), at=parse_iso(st["last_time"]))
        newest = parse_iso(max(hours)) if hours else None
        if newest is not None:
            st["hours"] = {k: v for k, v in hours.items() if parse_iso(k) > newest - NOWCAST_HOURS * HOUR}

    def _hourly_sums(self, st: dict[str, Any], readings: list[Reading]) -> dict[str, dict[str, list[float]]]:
        """The batch's new concentrations summed per clock hour and pollutant (hour key → pollutant → [sum, n]).

        Summed first, merged into the state once per hour: a busy station
        sends many readings an hour, and formatting an hour key per reading
        cost more than the index itself. Only readings newer than the newest
        one counted so far are taken (``last_time`` moves as they are).
        """
        last = parse_iso(st["last_time"]) if st.get("last_time") else None
        by_hour: dict[datetime, dict[str, list[float]]] = {}
        pollutants = tuple(self.cfg.pollutants.items())
        clock_hour = hour_end = hour_sums = None     # the clock hour of the last reading counted, and its sums
        for reading in sorted(readings, key=lambda r: r.time):
            moment = reading.time
            if last is not None and moment <= last:
                continue
            sums = None
            for pollutant, keys in pollutants:
                value = _concentration(reading.values, keys)
                if value is not None:
                    if sums is None:
                        # Sorted: a new clock hour comes rarely (replace() per reading was 3 % of a worker).
                        if (clock_hour is None or moment.tzinfo is not clock_hour.tzinfo
                                or not clock_hour <= moment < hour_end):
                            clock_hour = moment.replace(minute=0, second=0, microsecond=0)
                            hour_end, hour_sums = clock_hour + HOUR, by_hour.setdefault(clock_hour, {})
                        sums = hour_sums
                    total = sums.setdefault(pollutant, [0.0, 0])
                    total[0] += value
                    total[1] += 1
                    last = moment
        if last is not None and by_hour:
            st["last_time"] = iso(last)
        return {_hour_key(hour): sums for hour, sums in by_hour.items()}

    def _judge(self, row, device: Device, hour: datetime, result: AqiResult) -> str | None:
        """One hour's verdict on the episode: "open", "hold" (it lasts), "close", or None (no episode)."""
        st = row.state
        index = result.category.index
        st["current"] = _summary(result, hour)
        if st.get("phase") != "alert":
            if index < self.cfg.alert_from:
                return None
            st.update(phase="alert", started=iso(hour), peak=st["current"], below_since=None,
                      worsened=[{"hour": iso(hour), "category": result.category.key, "aqi": result.aqi}])
            open_or_update(self, row, self._alert(device, st), hour)
            return "open"
        if index >= self.cfg.alert_from:
            st["below_since"] = None
            if index > st["peak"]["index"]:
                st["worsened"].append({"hour": iso(hour), "category": result.category.key, "aqi": result.aqi})
            if (index, result.aqi) > (st["peak"]["index"], st["peak"]["aqi"]):
                st["peak"] = st["current"]
            return "hold"
        st["below_since"] = st.get("below_since") or iso(hour)
        if hour - parse_iso(st["below_since"]) < (self.cfg.clear_after_hours - 1) * HOUR:
            return "hold"
        close(self, row, self._alert(device, st), hour,
              note="Chất lượng không khí đã cải thiện / air quality back below the alert level")
        st["phase"] = "normal"
        return "close"

    def _alert(self, device: Device, st: Mapping[str, Any]) -> Alert:
        cur, peak = st["current"], st["peak"]
        label = device.label
        title = (f"Chất lượng không khí {cur['category_vi']} (AQI {cur['aqi']}): {label} / "
                 f"Air quality {cur['category_en']} (AQI {cur['aqi']}): {label}")
        return Alert(category=self.cfg.category, severity=self.cfg.severity_by_category[peak["index"]], title=title,
                     geom=device.position(), feature_id=device.id,
                     payload={"device": device.external_id, "method": self.method.key,
                              "method_title": self.method.title, "current": cur, "peak": peak,
                              "worsened": list(st.get("worsened", []))})


def _summary(result: AqiResult, hour: datetime) -> dict[str, Any]:
    cat = result.category
    return {"hour": iso(hour), "aqi": result.aqi, "index": cat.index, "category": cat.key,
            "category_vi": cat.name_vi, "category_en": cat.name_en, "colour": cat.colour,
            "dominant": result.dominant, "sub_indices": dict(result.sub_indices),
            "nowcasts": {p: round(v, 1) for p, v in result.nowcasts.items()}, "beyond_scale": result.beyond_scale}
