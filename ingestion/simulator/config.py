# SPDX-License-Identifier: AGPL-3.0-or-later
"""A simulated fleet described as data: the typed form of ``simulator.toml``.

One TOML file per city (``fixtures/cities/<slug>/simulator.toml``, or any
file given with ``twin simulate --config``). Unknown keys are refused and
file paths resolve against the TOML file's folder, as in ``city.toml``, so
nothing about a city lives in code and a typo fails before anything runs.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from twin.cities.config import SLUG_PATTERN, DataFile, LayerDisplay
from twin.errors import InvalidInput

DEVICE_ID_PREFIX = r"^[a-z0-9][a-z0-9-]{0,30}$"


class SimulatorConfigError(InvalidInput):
    """``simulator.toml`` cannot be read or does not validate."""

    code = "InvalidSimulatorConfig"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Group(Strict):
    """What every device group has: its layer, its size and how its device ids are spelt."""

    layer: LayerDisplay = Field(description="The layer (kind sensor) the group's devices are registered in.")
    count: int = Field(default=0, ge=0, le=100_000, description="Devices in the group (0 = none).")
    id_prefix: str = Field(pattern=DEVICE_ID_PREFIX, description="Device ids are PREFIX-0001 …; the id is the "
                           "feature's external id and a topic level, so it must be unique among the city's "
                           "sensors.")


class AirGroup(Group):
    """Air-quality stations replaying the real Hà Nội PM2.5 series (``pm25.py``)."""

    sites: tuple[str, ...] = Field(min_length=1, description="Layers whose features host a station, in order "
                                   "of preference (point on surface of each feature).")
    series: DataFile = Field(description="AirNow CSV replayed by every station, each from its own offset.")
    pm10_ratio: float | None = Field(default=0.65, gt=0, le=1, description="PM2.5/PM10 ratio used to derive a "
                                     "PM10 value (not measured); leave out to send PM2.5 only.")


class WaterGroup(Group):
    """Water-level gauges on a river: tide, occasional flood waves, noise (metres above the gauge datum)."""

    river_layer: str = Field(pattern=SLUG_PATTERN, description="Layer holding the river lines.")
    river_name: str = Field(min_length=1, description="Name of the river's features in that layer.")
    base_level_m: float = Field(default=0.6, description="Mean level without tide or flood, m.")
    tide_amplitude_m: float = Field(default=0.3, ge=0, description="Half the tidal range, m.")
    tide_period_h: float = Field(default=12.42, gt=0, description="Tidal period (M2 = 12.42 h), simulated hours.")
    flood_every_h: float = Field(default=48, gt=0, description="A flood wave starts every this many simulated "
                                 "hours per gauge, at a random phase.")
    flood_duration_h: float = Field(default=12, gt=0, description="Length of a flood wave, simulated hours.")
    flood_peak_m: tuple[float, float] = Field(default=(1.2, 3.4), description="Range of a wave's height "
                                              "above the normal level, m (drawn per wave).")
    noise_m: float = Field(default=0.02, ge=0, description="Gaussian noise of one reading, m.")
    thresholds: dict[str, float] = Field(default_factory=dict, description="Alarm levels stored on the feature, m.")

    @model_validator(mode="after")
    def _peak_range(self) -> WaterGroup:
        low, high = self.flood_peak_m
        if not 0 <= low <= high:
            raise ValueError("flood_peak_m must be [low, high] with 0 <= low <= high")
        return self


class FireGroup(Group):
    """Fire-alarm panels in buildings: heartbeats, a rare alarm, its reset."""

    buildings_layer: str = Field(pattern=SLUG_PATTERN, description="Layer of buildings to place the panels in.")
    alarm_rate_per_h: float = Field(default=0.002, ge=0, description="Chance per simulated hour that a panel "
                                    "goes into alarm.")
    reset_after_h: float = Field(default=6, gt=0, description="Simulated hours from an alarm to its reset.")
    start_alarmed: int = Field(default=0, ge=0, description="Panels (the first ones) that raise an alarm in "
                               "their first message: a fire on the map at once, for demos and tests.")


class FleetConfig(Strict):
    """A whole simulated fleet for one city."""

    city: str = Field(pattern=SLUG_PATTERN, description="City slug the devices belong to.")
    topic_root: str = Field(default="city", pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_/-]*$",
                            description="First topic level(s), as the ingestion workers' [topics] root.")
    seed: int = Field(default=2026, description="Random seed: the same seed gives the same fleet and values.")
    hour_s: float = Field(default=10, gt=0, description="Wall-clock seconds per simulated hour: one hour of the "
                          "PM2.5 series, of tide and of alarm odds passes in this many seconds (3600 = real time).")
    rate: float = Field(default=50, ge=0, description="Messages per second for the whole fleet (0 = as fast as "
                        "possible).")
    air: AirGroup | None = None
    water: WaterGroup | None = None
    fire: FireGroup | None = None

    @model_validator(mode="after")
    def _distinct(self) -> FleetConfig:
        groups = self.groups()
        if not any(g.count for g in groups):
            raise ValueError("the fleet has no device: give at least one group a count")
        for attr in ("id_prefix",):
            values = [getattr(g, attr) for g in groups]
            if len(values) != len(set(values)):
                raise ValueError(f"groups must not share an {attr}")
        if len({g.layer.slug for g in groups}) != len(groups):
            raise ValueError("groups must not share a layer")
        if self.fire is not None and self.fire.start_alarmed > self.fire.count:
            raise ValueError("fire.start_alarmed exceeds fire.count")
        return self

    def groups(self) -> list[Group]:
        return [g for g in (self.air, self.water, self.fire) if g is not None]


def default_fleet_path() -> Path:
    """``fixtures/cities/<DEFAULT_CITY>/simulator.toml`` (read when called, never at import)."""
    from django.conf import settings

    return Path(settings.CITY_FIXTURES_DIR) / settings.DEFAULT_CITY / "simulator.toml"


def parse_fleet(data: dict, base_dir: Path | None = None, source: str = "(inline)") -> FleetConfig:
    """Validate fleet data; relative paths resolve against ``base_dir``."""
    try:
        return FleetConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
        raise SimulatorConfigError(f"invalid simulator config {source}: " + "; ".join(problems),
                                   problems=problems) from None


def load_fleet(path: str | Path | None = None) -> FleetConfig:
    """Read and validate a ``simulator.toml`` (default: the default city's)."""
    path = Path(path) if path is not None else default_fleet_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SimulatorConfigError(f"cannot read simulator config {path}: {exc}") from None
    return parse_fleet(data, base_dir=path.resolve().parent, source=str(path))


__all__ = ["AirGroup", "FireGroup", "FleetConfig", "Group", "SimulatorConfigError", "WaterGroup",
           "default_fleet_path", "load_fleet", "parse_fleet"]
