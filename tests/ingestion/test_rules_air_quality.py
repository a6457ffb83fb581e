# SPDX-License-Identifier: AGPL-3.0-or-later
"""Air quality: hourly VN_AQI per station; one event per bad-air episode, updated while it lasts, ended on clearing."""
from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ingestion.rules.aqi import hourly_aqi
from ingestion.rules.engine import configured, evaluate
from ingestion.rules.episodes import interval_spread, parse_iso
from tests.ingestion.rules_support import T0, events_of, history, make_device, reading, state_of
from twin.models import EventStatus

pytestmark = pytest.mark.django_db

HANOI = Path(__file__).resolve().parents[3] / "shared" / "data" / "air" / "hanoi_us_embassy_pm25_2016.csv"
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
HOUR = timedelta(hours=1)
RULES = {"routing": {"fallback_agency": "hue-ioc"}, "rules": {"air_quality": {"alert_from": 2, "clear_after_hours": 2}}}


@pytest.fixture
def station():
    return make_device(sensor_type="air_quality", unit="µg/m³", measures=["pm25", "pm10"])


def hourly(station, pm25_series, start=T0, **extra):
    """One evaluate() per hour, as a live station reporting hourly means would."""
    for i, value in enumerate(pm25_series):
        evaluate([reading(station, start + i * HOUR, {"pm25": value, **extra}, stream="air")])


def test_three_hours_of_poor_air_open_one_event_with_the_vn_aqi_and_its_category(station):
    with configured(RULES):
        hourly(station, [20, 20, 60, 60, 60])       # NowCast crosses 50 µg/m³ (VN_AQI 100) on the 4th hour
    [event] = events_of(station)
    current = event.payload["current"]
    assert (current["category"], current["category_vi"], current["colour"]) == ("kem", "Kém", "#FF7E00")
    assert current["aqi"] == hourly_aqi("vn_aqi", {"pm25": [60, 60, 60, 20, 20]}).aqi
    assert event.payload["method"] == "vn_aqi" and event.severity == 2
    assert (event.category, event.agency.code) == ("air_quality", "hue-so-nong-nghiep-moi-truong")
    assert event.occurred_at == T0 + 3 * HOUR and event.status == EventStatus.NEW


def test_a_worsening_category_raises_the_severity_of_the_same_event(station):
    with configured(RULES):
        hourly(station, [60, 60, 60, 120, 120, 200, 200])
    [event] = events_of(station)
    assert [w["category"] for w in event.payload["worsened"]] == ["kem", "xau", "rat_xau"]
    assert event.severity == 4 and event.payload["peak"]["category"] == "rat_xau"


def test_the_episode_ends_after_two_hours_below_the_alert_level_and_the_next_is_a_new_event(station):
    with configured(RULES):
        hourly(station, [60, 60, 60, 10, 10, 10, 10, 70, 70])
    first, second = events_of(station)
    assert first.status == EventStatus.RESOLVED
    assert history(first)[-1] == ("new", "resolved", "rule:air_quality")
    assert second.status == EventStatus.NEW and second.occurred_at > first.occurred_at


def test_one_hour_below_the_line_does_not_end_the_episode(station):
    with configured(RULES):
        hourly(station, [60, 60, 60, 60, 60, 60, 25, 60, 60])
    [event] = events_of(station)
    assert event.status == EventStatus.NEW


def test_sub_hourly_readings_are_averaged_per_clock_hour(station):
    with configured(RULES):
        for hour in range(3):
            evaluate([reading(station, T0 + hour * HOUR + timedelta(minutes=m), {"pm25": v}, stream="air")
                      for m, v in ((0, 40), (20, 60), (40, 80))])   # hourly mean 60 µg/m³
    [event] = events_of(station)
    assert event.payload["current"]["nowcasts"] == {"pm25": 60.0}


def test_pm10_counts_too_and_the_dominant_pollutant_is_named(station):
    with configured(RULES):
        hourly(station, [10, 10, 10], pm10=200)
    [event] = events_of(station)
    assert event.payload["current"]["dominant"] == "pm10" and event.payload["current"]["aqi"] == 125


def test_us_epa_2024_is_an_option_and_rates_the_same_air_differently(station):
    other = make_device(sensor_type="air_quality", unit="µg/m³")
    with configured(RULES):
        hourly(station, [40, 40, 40])
    with configured({**RULES, "rules": {"air_quality": {"method": "us_epa_2024"}}}):
        hourly(other, [40, 40, 40])
    assert events_of(station) == []                       # VN_AQI 80: Trung bình
    [event] = events_of(other)                            # US-EPA 112: Unhealthy for Sensitive Groups
    assert (event.payload["method"], event.payload["current"]["aqi"]) == ("us_epa_2024", 112)


def test_missing_values_and_redelivered_readings_change_nothing(station):
    with configured(RULES):
        hourly(station, [20, 20])
        evaluate([reading(station, T0 + HOUR, {"pm25": 400}, stream="air")])     # redelivery of a judged hour
        evaluate([reading(station, T0 + 2 * HOUR, {"pm25": -999}, stream="air")])
    assert events_of(station) == []


# --- a day of the real Hà Nội series ------------------------------------------------------------------------

def _hanoi(first: datetime, last: datetime) -> list[tuple[datetime, float]]:
    """Rows of the file between two local times, in file order (not time order); -999 kept as sent."""
    out = []
    with HANOI.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            local = datetime.strptime(row["Date (LT)"], "%Y-%m-%d %I:%M %p")
            if first <= local <= last and row["QC Name"] != "Invalid":
                out.append((local.replace(tzinfo=LOCAL).astimezone(timezone.utc), float(row["Raw Conc."])))
    return out


def _expected_episodes(rows, alert_from=2, clear_after=2):
    """Episodes straight from the pure AQI functions: (start, end or None, worst category index)."""
    values = {t: v for t, v in rows if v >= 0}
    episodes, current, below = [], None, 0
    hour = min(t for t, _ in rows)
    while hour <= max(t for t, _ in rows):
        result = hourly_aqi("vn_aqi", {"pm25": [values.get(hour - i * HOUR) for i in range(12)]})
        if hour in values and result is not None:
            index = result.category.index
            if current is None and index >= alert_from:
                current, below = [hour, None, index], 0
            elif current is not None:
                current[2] = max(current[2], index)
                below = below + 1 if index < alert_from else 0
                if below >= clear_after:
                    current[1] = hour
                    episodes.append(tuple(current))
                    current = None
        hour += HOUR
    return episodes + ([tuple(current)] if current else [])


HANOI_DAY = (datetime(2016, 6, 18, 12), datetime(2016, 6, 19, 23))   # 19 June 2016 after 12 hours of warm-up


def test_replaying_a_day_of_hanoi_pm25_gives_one_event_per_bad_air_episode():
    station = make_device(sensor_type="air_quality", unit="µg/m³")
    rows = _hanoi(*HANOI_DAY)
    with configured(RULES):
        for when, value in sorted(rows):
            evaluate([reading(station, when, {"pm25": value}, stream="air")])
    events = events_of(station)
    expected = _expected_episodes(rows)
    assert [(e.occurred_at, e.payload.get("cleared_at")) for e in events] == [
        (start, end.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if end else None) for start, end, _ in expected]
    assert [e.payload["peak"]["index"] for e in events] == [worst for _, _, worst in expected]
    # What that day looked like (local time): bad air at 21:00 on the 18th, 04:00–13:00 and from 20:00 on the 19th.
    local = [e.occurred_at.astimezone(LOCAL).strftime("%d %H:%M") for e in events]
    assert local == ["18 21:00", "19 04:00", "19 20:00"]
    assert [e.status for e in events] == [EventStatus.RESOLVED, EventStatus.RESOLVED, EventStatus.NEW]
    assert [w["category"] for w in events[1].payload["worsened"]] == ["kem", "xau"]
    assert all(len(h) == 2 for h in map(history, events[:2])) and len(history(events[2])) == 1


def test_the_same_day_in_one_unordered_batch_gives_the_same_episodes():
    live, bulk = (make_device(sensor_type="air_quality", unit="µg/m³") for _ in range(2))
    rows = _hanoi(*HANOI_DAY)
    with configured(RULES):
        for when, value in sorted(rows):
            evaluate([reading(live, when, {"pm25": value}, stream="air")])
        evaluate([reading(bulk, when, {"pm25": value}, stream="air") for when, value in rows])
    summary = [[(e.occurred_at, e.status, e.payload.get("cleared_at"), e.severity) for e in events_of(d)]
               for d in (live, bulk)]
    assert summary[0] == summary[1] and len(summary[0]) == 3


def test_a_lasting_episode_rewrites_its_aqi_figure_at_most_every_five_minutes_of_reading_time(station):
    """The index is hourly: a station reporting every 30 s must not rewrite (and push) its event each time."""
    written: list[datetime] = []
    with configured(RULES):
        hourly(station, [60, 60, 60])                       # the episode opens on the third hour
        for k in range(1, 41):                              # 20 minutes of readings, the mean creeping up
            evaluate([reading(station, T0 + 2 * HOUR + k * timedelta(seconds=30), {"pm25": 60 + k / 4},
                              stream="air")])
            at = parse_iso(state_of("air_quality", str(station.pk)).state["shown"][3])
            if not written or at != written[-1]:
                written.append(at)
    [event] = events_of(station)
    least = 300 * interval_spread(str(station.pk))
    gaps = [(b - a).total_seconds() for a, b in zip(written, written[1:])]
    assert len(written) >= 3 and all(gap >= least for gap in gaps), (least, gaps)
    assert event.severity == 2 and event.payload["current"]["category"] == "kem"
