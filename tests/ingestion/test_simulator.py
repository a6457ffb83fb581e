# SPDX-License-Identifier: AGPL-3.0-or-later
"""The device simulator: the real PM2.5 replay, plausible gauges and alarms, idempotent registration,
and messages the ingestion parser accepts (real Mosquitto, real PostGIS)."""
from __future__ import annotations

import csv
import json
import time
from datetime import datetime, timezone

import pytest
from django.conf import settings
from django.db import connection

from ingestion.config import LimitsConfig
from ingestion.devices import DeviceDirectory
from ingestion.parsing import ParsedMessage, parse_message
from ingestion.simulator.config import SimulatorConfigError, parse_fleet
from ingestion.simulator.fleet import register_fleet
from ingestion.simulator.plan import make_plan
from ingestion.simulator.pm25 import load_series
from ingestion.simulator.publisher import run_fleet
from ingestion.simulator.streams import (AirParams, AirStation, DeviceSpec, FireAlarm, FireParams, SimClock,
                                         WaterGauge, WaterParams)
from ingestion.topics import TopicScheme
from tests.ingestion.simulator_support import FLEET_TOML, SERIES, Collector, fleet_config, fleet_data
from twin.models import Feature

def parse(topic: str, payload: bytes, root: str, received_at: datetime | None = None):
    return parse_message(topic, payload, received_at or datetime.now(timezone.utc), scheme=TopicScheme(root=root),
                         limits=LimitsConfig())


# --- the real series ---------------------------------------------------------------------------

def test_pm25_series_keeps_valid_hours_in_time_order_each_hour_once():
    series = load_series(SERIES)
    assert (series.report.rows, series.report.missing, series.report.invalid, series.report.negative) == (
        8040, 370, 60, 18)
    assert series.report.duplicates == ("2016-03-13T03:00:00+07:00",)
    assert len(series) == series.report.kept == 7591
    assert all(a < b for a, b in zip(series.times, series.times[1:]))
    assert min(series.values) >= 0 and -999.0 not in series.values


def test_pm25_series_values_are_the_files_valid_values_sorted_by_time_first_row_of_a_repeated_hour_wins():
    expected: dict[datetime, float] = {}
    with open(SERIES, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            value = float(row["Raw Conc."])
            if row["QC Name"] == "Valid" and value >= 0:
                moment = datetime.strptime(row["Date (LT)"], "%Y-%m-%d %I:%M %p")
                expected.setdefault(moment, value)
    series = load_series(SERIES)
    assert list(series.values) == [expected[k] for k in sorted(expected)]
    repeated = [v for t, v in zip(series.times, series.values) if t.isoformat() == "2016-03-13T03:00:00+07:00"]
    assert repeated == [1.2]


# --- behaviours ----------------------------------------------------------------------------------

def station(index: int = 0, stations: int = 4, ratio: float | None = 0.65) -> AirStation:
    values = load_series(SERIES).values
    spec = DeviceSpec("air", f"aq-{index}", index, "r/hue/sensor/aq/")
    return AirStation(spec, SimClock(started_at=1_000_000.0, hour_s=2.0), 1, AirParams(values, stations, ratio))


def test_air_station_replays_the_real_series_one_hour_per_simulated_hour_in_order():
    values = load_series(SERIES).values
    air = station(index=1)
    published = []
    for hour in range(200):
        _, payload, _ = air.message(1_000_000.0 + hour * 2.0 + 0.5)
        published.append(json.loads(payload))
    start = len(values) // 4
    assert [p["pm25"] for p in published] == list(values[start:start + 200])
    assert all(p["pm10"] == round(p["pm25"] / 0.65, 1) for p in published)


def test_air_stations_replay_from_different_offsets_and_pm10_can_be_left_out():
    first, second = station(0, ratio=None), station(2, ratio=None)
    now = 1_000_000.0 + 0.5
    assert json.loads(first.message(now)[1])["pm25"] != json.loads(second.message(now)[1])["pm25"]
    assert "pm10" not in json.loads(first.message(now)[1])


def test_a_device_never_repeats_a_timestamp_even_in_one_instant_or_a_batch():
    air = station()
    stamps = []
    for _ in range(3):
        _, payload, readings = air.message(1_000_000.5, count=5)
        stamps += [item["dateObserved"] for item in json.loads(payload)]
        assert readings == 5
    assert len(stamps) == len(set(stamps)) == 15 and stamps == sorted(stamps)


def gauge(index: int = 0) -> WaterGauge:
    params = WaterParams(base_level_m=0.6, tide_amplitude_m=0.3, tide_period_h=12.42, flood_every_h=48,
                         flood_duration_h=12, flood_peak_m=(1.2, 3.4), noise_m=0.02)
    return WaterGauge(DeviceSpec("water", f"wl-{index}", index, "r/hue/sensor/wl/"), SimClock(0.0, 1.0), 7, params)


def test_water_gauge_follows_the_tide_and_flood_waves_sometimes_cross_alarm_level_2():
    levels = [gauge().level(hour / 4) for hour in range(4 * 24 * 30)]       # 30 simulated days
    assert min(levels) > 0.2
    assert max(levels) > 2.0, "a month without one flood wave above BĐ2"
    assert sum(level > 2.0 for level in levels) / len(levels) < 0.15, "above BĐ2 most of the time"


def test_a_flood_wave_reaches_the_downstream_gauge_later():
    up, down = gauge(0), gauge(3)
    peak_up = max(range(24 * 200), key=lambda h: up.flood(h / 4))
    assert up.flood(peak_up / 4) > 0
    assert down.flood((peak_up + 4 * 3) / 4) == pytest.approx(up.flood(peak_up / 4))


def test_fire_alarm_raises_a_critical_alert_then_resets_with_valid_to_and_heartbeats_otherwise():
    panel = FireAlarm(DeviceSpec("fire", "fa-0", 0, "r/hue/sensor/fa-0/"), SimClock(0.0, 1.0), 1,
                      FireParams(alarm_rate_per_h=0.0, reset_after_h=2.0, start_alarmed=1))
    topics, items = [], []
    for hour in (0.1, 0.5, 1.0, 2.5, 3.0):
        topic, payload, _ = panel.message(hour)
        topics.append(topic.rsplit("/", 1)[1])
        items.append(json.loads(payload))
    assert topics == ["alert", "status", "status", "alert", "status"]
    alarm, reset = items[0], items[3]
    assert (alarm["category"], alarm["severity"], alarm["alarm"], "validTo" in alarm) == ("fire", "critical", True,
                                                                                             False)
    assert reset["alarm"] is False and reset["validTo"] == reset["dateIssued"]
    assert reset["validFrom"] == alarm["dateIssued"]


# --- every payload passes the real parser --------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 7])
def test_every_simulated_stream_passes_the_ingestion_parser(batch):
    now = time.time()
    scheme_root = "r/city"
    specs = [AirStation(DeviceSpec("air", "aq-1", 0, f"{scheme_root}/hue/sensor/aq-1/"), SimClock(now, 10), 1,
                        AirParams(load_series(SERIES).values, 1, 0.65)),
             WaterGauge(DeviceSpec("water", "wl-1", 0, f"{scheme_root}/hue/sensor/wl-1/"), SimClock(now, 10), 1,
                        gauge().params),
             FireAlarm(DeviceSpec("fire", "fa-1", 0, f"{scheme_root}/hue/sensor/fa-1/"), SimClock(now, 10), 1,
                       FireParams(0.0, 0.0001, 1))]
    for device in specs:
        for _ in range(3):      # alarm, reset, heartbeat for the panel
            topic, payload, readings = device.message(time.time(), batch)
            parsed = parse(topic, payload, scheme_root)
            assert isinstance(parsed, ParsedMessage), parsed
            assert len(parsed.times) == readings


def test_fleet_config_refuses_unknown_keys_and_shared_device_ids():
    data, _ = fleet_data()
    data["air"]["colour"] = "red"
    with pytest.raises(SimulatorConfigError, match="colour"):
        parse_fleet(data, base_dir=FLEET_TOML.parent)
    data, _ = fleet_data()
    data["water"]["id_prefix"] = data["air"]["id_prefix"]
    with pytest.raises(SimulatorConfigError, match="id_prefix"):
        parse_fleet(data, base_dir=FLEET_TOML.parent)


# --- registration (PostGIS, Huế loaded) ----------------------------------------------------------

def placement_checks(cfg) -> dict[str, int]:
    """Devices off their place: gauges > 1 m from the river, panels outside their building."""
    sql = """
    SELECT
      (SELECT count(*) FROM twin_feature g JOIN twin_layer l ON l.id = g.layer_id WHERE l.slug = %(water)s
         AND NOT EXISTS (SELECT 1 FROM twin_feature r JOIN twin_layer rl ON rl.id = r.layer_id
                         WHERE rl.slug = 'hue-rivers' AND r.name = 'Sông Hương'
                           AND ST_DWithin(r.geom::geography, g.geom::geography, 1))),
      (SELECT count(*) FROM twin_feature p JOIN twin_layer l ON l.id = p.layer_id WHERE l.slug = %(fire)s
         AND NOT EXISTS (SELECT 1 FROM twin_feature b JOIN twin_layer bl ON bl.id = b.layer_id
                         WHERE bl.slug = 'hue-buildings' AND ST_Intersects(b.geom, p.geom)))
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"water": cfg.water.layer.slug, "fire": cfg.fire.layer.slug})
        off_river, outside = cursor.fetchone()
    return {"off_river": off_river, "outside_building": outside}


@pytest.mark.django_db
def test_register_fleet_places_devices_on_real_places_and_is_idempotent():
    cfg = fleet_config(air=5, water=3, fire=4)
    first = register_fleet(cfg)
    snapshot = sorted(Feature.objects.filter(layer__in=first.layers.values())
                      .values_list("layer__slug", "external_id", "id", "geom"))
    again = register_fleet(cfg)
    assert sorted(Feature.objects.filter(layer__in=again.layers.values())
                  .values_list("layer__slug", "external_id", "id", "geom")) == snapshot
    assert (first.count("air"), first.count("water"), first.count("fire")) == (5, 3, 4)
    assert placement_checks(cfg) == {"off_river": 0, "outside_building": 0}
    kinds = set(Feature.objects.filter(layer__in=first.layers.values()).values_list("layer__kind", flat=True))
    types = {f.properties["sensor_type"] for f in Feature.objects.filter(layer__in=first.layers.values())}
    assert kinds == {"sensor"} and types == {"air_quality", "water_level", "fire_alarm"}


@pytest.mark.django_db
def test_a_smaller_fleet_removes_the_devices_it_no_longer_has():
    data, _ = fleet_data(air=4)
    register_fleet(parse_fleet(data, base_dir=FLEET_TOML.parent))
    data["air"]["count"] = 2
    fleet = register_fleet(parse_fleet(data, base_dir=FLEET_TOML.parent))
    assert sorted(Feature.objects.filter(layer=fleet.layers["air"]).values_list("external_id", flat=True)) == [
        f"{data['air']['id_prefix']}-0001", f"{data['air']['id_prefix']}-0002"]


# --- a short run over the real broker ------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("processes", [1, 2])
def test_a_short_run_publishes_messages_the_ingestion_parser_and_device_lookup_accept(processes):
    cfg = fleet_config(air=4, water=2, fire=4)
    fleet = register_fleet(cfg)
    plan = make_plan(cfg, fleet.devices, settings.MQTT_URL, rate=60, qos=1, duration=3.0)
    with Collector(cfg.topic_root) as collector:
        stats = run_fleet(plan, processes=processes)
        collector.wait_for(stats.messages)
    assert stats.refused == stats.unacked == 0 and stats.messages == stats.acked
    assert 150 <= stats.messages <= 200, "60 msg/s for 3 s"
    assert len(collector.messages) == stats.messages
    directory = DeviceDirectory()
    streams = set()
    for topic, payload in collector.messages:
        parsed = parse(topic, payload, cfg.topic_root)
        assert isinstance(parsed, ParsedMessage), parsed
        readings = directory.resolve(parsed)
        assert isinstance(readings, list), readings
        streams.add(parsed.stream)
    assert streams >= {"air", "water_level", "status", "alert"}
