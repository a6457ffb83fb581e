# SPDX-License-Identifier: AGPL-3.0-or-later
"""Fleet configuration + run options → the picklable plan the publisher processes execute.

Kept apart from ``fleet.py`` (database) and ``publisher.py`` (MQTT) so the
benchmark and the tests can build plans for fleets they register themselves.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

from ingestion.config import BrokerConfig
from ingestion.simulator.config import FleetConfig
from ingestion.simulator.pm25 import load_series
from ingestion.simulator.publisher import PublishPlan
from ingestion.simulator.streams import AirParams, Behaviours, DeviceSpec, FireParams, SimClock, WaterParams


def make_behaviours(cfg: FleetConfig, started_at: float | None = None) -> Behaviours:
    """The behaviour parameters of every group, with one clock for the whole run."""
    clock = SimClock(started_at=time.time() if started_at is None else started_at, hour_s=cfg.hour_s)
    air = water = fire = None
    if cfg.air is not None and cfg.air.count:
        series = load_series(cfg.air.series)
        air = AirParams(values=series.values, stations=cfg.air.count, pm10_ratio=cfg.air.pm10_ratio)
    if cfg.water is not None and cfg.water.count:
        w = cfg.water
        water = WaterParams(base_level_m=w.base_level_m, tide_amplitude_m=w.tide_amplitude_m,
                            tide_period_h=w.tide_period_h, flood_every_h=w.flood_every_h,
                            flood_duration_h=w.flood_duration_h, flood_peak_m=w.flood_peak_m, noise_m=w.noise_m)
    if cfg.fire is not None and cfg.fire.count:
        fire = FireParams(alarm_rate_per_h=cfg.fire.alarm_rate_per_h, reset_after_h=cfg.fire.reset_after_h,
                          start_alarmed=cfg.fire.start_alarmed)
    return Behaviours(clock=clock, seed=cfg.seed, air=air, water=water, fire=fire)


def make_plan(cfg: FleetConfig, devices: Sequence[DeviceSpec], broker_url: str, *, rate: float | None = None,
              batch: int = 1, qos: int = 0, duration: float = 10.0, once: bool = False, client_id: str = "",
              started_at: float | None = None) -> PublishPlan:
    """One plan for the whole fleet; :func:`~ingestion.simulator.publisher.split_plan` shares it out."""
    host, port, tls, username, password = BrokerConfig(url=broker_url).endpoint()
    if tls:
        raise ValueError("the simulator speaks plain MQTT on the local network only (no mqtts://)")
    if batch < 1 or qos not in (0, 1):
        raise ValueError("batch must be ≥ 1 and qos 0 or 1")
    return PublishPlan(host=host, port=port, devices=tuple(devices), behaviours=make_behaviours(cfg, started_at),
                       rate=cfg.rate if rate is None else rate, batch=batch, qos=qos, duration=duration, once=once,
                       client_id=client_id, username=username, password=password)


__all__ = ["make_behaviours", "make_plan"]
