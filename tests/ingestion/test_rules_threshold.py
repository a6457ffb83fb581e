# SPDX-License-Identifier: AGPL-3.0-or-later
"""Thresholds: hysteresis and minimum durations, so a value dancing on the line raises no storm."""
from __future__ import annotations

import pytest

from ingestion.rules.engine import RulesConfigError, configured, evaluate, parse_rules
from ingestion.rules.episodes import episode_key, interval_spread
from tests.ingestion.rules_support import T0, events_of, history, make_device, minutes, reading, state_of
from twin.models import EventStatus

pytestmark = pytest.mark.django_db

WATCH = {"name": "flood", "value": "level_cm", "streams": ["water_level"], "high": 200, "low": 190,
         "min_duration_s": 600, "clear_duration_s": 900, "category": "flood", "severity": 4, "unit": "cm",
         "title_vi": "Mực nước cao", "title_en": "High water"}


def rules(**watch):
    return {"routing": {"fallback_agency": "hue-ioc"}, "rules": {"threshold": {"watches": [{**WATCH, **watch}]}}}


def feed(device, series, step_min=5, start=0):
    """One evaluate() per reading, as a live sink would: series of levels every ``step_min`` minutes."""
    for i, level in enumerate(series):
        evaluate([reading(device, minutes(start + i * step_min), {"level_cm": level})])


@pytest.fixture
def gauge():
    return make_device(sensor_type="water_level")


def test_a_level_above_high_for_the_minimum_duration_raises_one_event_from_when_it_crossed(gauge):
    with configured(rules()):
        feed(gauge, [180, 205, 210, 215, 220])         # 205 at +5 min; +15 min completes the 10 minutes
    [event] = events_of(gauge)
    assert event.occurred_at == T0 + minutes(5)
    assert (event.category, event.severity, event.agency.code) == ("flood", 4, "hue-phong-thu-dan-su")
    assert event.payload["value"] == 220 and event.payload["peak"] == 220
    assert event.source_key == episode_key("threshold", f"{gauge.pk}:flood", T0 + minutes(5))


def test_a_spike_shorter_than_the_minimum_duration_raises_nothing(gauge):
    with configured(rules()):
        feed(gauge, [180, 230, 235, 185, 180])
    assert events_of(gauge) == []
    assert state_of("threshold", f"{gauge.pk}:flood").state["phase"] == "normal"


def test_a_value_dancing_between_low_and_high_neither_raises_again_nor_clears(gauge):
    with configured(rules()):
        feed(gauge, [205, 205, 205] + [199, 201, 195, 200, 192, 201] * 3)
    [event] = events_of(gauge)
    assert event.status == EventStatus.NEW and "cleared_at" not in event.payload


def test_clearing_needs_the_value_at_or_below_low_for_the_clear_duration(gauge):
    with configured(rules()):
        feed(gauge, [205, 205, 205, 185, 185, 195, 185, 185, 185])   # back above low at +25 min resets the clock
        [event] = events_of(gauge)
        assert event.status == EventStatus.NEW
        feed(gauge, [185], start=45)                                # +30 … +45 at or below low: 15 minutes
    [event] = events_of(gauge)
    assert event.status == EventStatus.RESOLVED and event.payload["cleared_at"].startswith("2026-11-24T08:45")
    assert history(event) == [("", "new", "rule:threshold"), ("new", "resolved", "rule:threshold")]


def test_after_clearing_a_new_crossing_is_a_new_event(gauge):
    with configured(rules(min_duration_s=0, clear_duration_s=0)):
        feed(gauge, [201, 180, 202, 180])
    first, second = events_of(gauge)
    assert first.status == second.status == EventStatus.RESOLVED
    assert first.source_key != second.source_key


def test_readings_of_one_batch_are_judged_in_time_order(gauge):
    with configured(rules()):
        batch = [reading(gauge, minutes(m), {"level_cm": v}) for m, v in [(15, 212), (0, 205), (10, 210), (5, 207)]]
        evaluate(batch)
    [event] = events_of(gauge)
    assert event.occurred_at == T0 and event.payload["value"] == 212


def test_a_stale_or_repeated_reading_does_not_rewind_the_state(gauge):
    with configured(rules(min_duration_s=0)):
        feed(gauge, [205])
        evaluate([reading(gauge, minutes(-30), {"level_cm": 100})])
        evaluate([reading(gauge, minutes(0), {"level_cm": 205})])
    [event] = events_of(gauge)
    assert event.status == EventStatus.NEW
    assert state_of("threshold", f"{gauge.pk}:flood").state["last_time"].startswith("2026-11-24T08:00")


def test_per_device_overrides_in_config_win_over_the_device_property_and_the_watch():
    by_property = make_device(sensor_type="water_level", thresholds={"level_cm_high": 300, "level_cm_low": 280})
    by_config = make_device(sensor_type="water_level", thresholds={"level_cm_high": 300, "level_cm_low": 280})
    plain = make_device(sensor_type="water_level")
    config = rules(min_duration_s=0, overrides={by_config.external_id: {"high": 150, "low": 140}})
    with configured(config):
        for device in (by_property, by_config, plain):
            feed(device, [160, 250])
    assert events_of(by_property) == []
    assert events_of(by_config)[0].payload["high"] == 150 and events_of(by_config)[0].occurred_at == T0
    assert events_of(plain)[0].occurred_at == T0 + minutes(5)


def test_a_below_watch_alerts_on_low_values_and_clears_above_high():
    gauge = make_device(sensor_type="water_level")
    with configured(rules(direction="below", high=50, low=30, min_duration_s=0, clear_duration_s=0)):
        feed(gauge, [60, 40, 29, 25, 45, 51])
    [event] = events_of(gauge)
    assert event.occurred_at == T0 + minutes(10) and event.payload["peak"] == 25
    assert event.status == EventStatus.RESOLVED


def test_readings_without_the_value_or_not_numbers_are_ignored(gauge):
    with configured(rules(min_duration_s=0)):
        evaluate([reading(gauge, minutes(0), {"level_cm": "cao"}), reading(gauge, minutes(1), {"battery": 9}),
                  reading(gauge, minutes(2), {"level_cm": True})])
    assert events_of(gauge) == []


@pytest.mark.parametrize("bad, message", [
    ({"low": 210}, "low (210.0) must be below high"),
    ({"min_duration_s": -1}, "greater than or equal to 0"),
    ({"colour": "red"}, "Extra inputs are not permitted"),
    ({"overrides": {"g-1": {"low": 500}}}, "device g-1: low (500.0) must be below high"),
])
def test_bad_watch_configuration_is_refused_with_the_field_named(bad, message):
    with pytest.raises(RulesConfigError) as caught:
        parse_rules(rules(**bad))
    assert message in str(caught.value) and "rules.threshold" in str(caught.value)


def test_a_lasting_condition_rewrites_its_event_at_most_once_per_update_interval_of_reading_time(gauge):
    """A gauge in alert reporting every second must not rewrite (and push) its event on every batch."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from twin.models import GeoEvent

    table = GeoEvent._meta.db_table
    config = rules(min_duration_s=0, clear_duration_s=0)
    config["rules"]["threshold"]["update_interval_s"] = 10
    with configured(config):
        evaluate([reading(gauge, T0, {"level_cm": 205})])
        with CaptureQueriesContext(connection) as queries:
            for second in range(1, 61):
                evaluate([reading(gauge, T0 + minutes(second / 60), {"level_cm": 205 + second})])
        writes = [q for q in queries.captured_queries if q["sql"].startswith(f'UPDATE "{table}"')]
        [event] = events_of(gauge)
        interval = 10 * interval_spread(f"{gauge.pk}:flood")     # 5–15 s, stable per subject
        assert int(60 / interval) - 1 <= len(writes) <= int(60 / interval) + 1   # one per interval, not 60
        assert event.payload["peak"] >= 265 - interval   # the newest written value, at most one interval old
        evaluate([reading(gauge, T0 + minutes(2), {"level_cm": 150})])
    [event] = events_of(gauge)
    assert event.status == EventStatus.RESOLVED and event.payload["peak"] == 265   # the close writes everything

