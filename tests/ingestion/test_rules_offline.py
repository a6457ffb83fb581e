# SPDX-License-Identifier: AGPL-3.0-or-later
"""Offline timers: a device silent past its reporting period plus grace gets one event, ended when it reports again."""
from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from ingestion.rules.engine import configured, evaluate, run_timers
from tests.ingestion.rules_support import T0, events_of, history, make_device, minutes, reading
from twin.models import DeviceLiveness, EventStatus, Feature

pytestmark = pytest.mark.django_db

RULES = {"routing": {"fallback_agency": "hue-ioc", "city_categories": {"device_offline": "hue-ioc"}},
         "rules": {"offline": {"kinds": {"sensor": {"period_s": 300, "grace_s": 120},
                                         "sensor.air_quality": {"period_s": 3600, "grace_s": 900}}}}}


def seen(device, at):
    DeviceLiveness.objects.update_or_create(feature=device, defaults={"last_seen": at})


@pytest.fixture
def gauge():
    device = make_device(sensor_type="water_level")
    seen(device, T0)
    return device


def test_a_device_silent_longer_than_period_plus_grace_gets_an_offline_event_routed_to_the_ioc(gauge):
    with configured(RULES):
        assert run_timers(T0 + minutes(7)) == {"offline": 0}      # 420 s: exactly period + grace, still fine
        assert run_timers(T0 + minutes(7.5)) == {"offline": 1}
    [event] = events_of(gauge)
    assert (event.kind, event.category, event.status) == ("offline", "device_offline", EventStatus.NEW)
    assert event.occurred_at == T0 + minutes(7)                  # when it became overdue
    assert event.agency.code == "hue-ioc" and event.payload["routing"]["step"] == "city_category"
    assert event.payload["last_contact"].startswith("2026-11-24T08:00") and event.payload["period_s"] == 300


def test_later_checks_do_not_raise_the_same_silence_again(gauge):
    with configured(RULES):
        changes = [run_timers(T0 + minutes(m))["offline"] for m in (8, 9, 30, 300)]
    assert changes == [1, 0, 0, 0] and len(events_of(gauge)) == 1


def test_a_reading_from_the_device_ends_the_event_and_a_new_silence_is_a_new_event(gauge):
    with configured(RULES):
        run_timers(T0 + minutes(10))
        evaluate([reading(gauge, minutes(12), {"level_cm": 120})])
        [event] = events_of(gauge)
        assert event.status == EventStatus.RESOLVED and history(event)[-1] == ("new", "resolved", "rule:offline")
        assert run_timers(T0 + minutes(15)) == {"offline": 0}      # heard from at +12: fine until +19
        assert run_timers(T0 + minutes(20)) == {"offline": 1}
    first, second = events_of(gauge)
    assert second.status == EventStatus.NEW and second.occurred_at == T0 + minutes(19)


def test_last_seen_written_by_the_sink_alone_also_ends_the_event(gauge):
    with configured(RULES):
        run_timers(T0 + minutes(10))
        seen(gauge, T0 + minutes(11))
        assert run_timers(T0 + minutes(12)) == {"offline": 1}
    [event] = events_of(gauge)
    assert event.status == EventStatus.RESOLVED


def test_periods_come_from_the_device_then_its_sensor_type_then_its_kind(gauge):
    station = make_device(sensor_type="air_quality", unit="µg/m³")
    special = make_device(sensor_type="water_level")
    for device in (station, special):
        seen(device, T0)
    config = {**RULES, "rules": {"offline": {**RULES["rules"]["offline"],
                                             "devices": {special.external_id: {"period_s": 60, "grace_s": 0}}}}}
    with configured(config):
        run_timers(T0 + minutes(2))
        assert [len(events_of(d)) for d in (special, gauge, station)] == [1, 0, 0]
        run_timers(T0 + minutes(10))
        assert [len(events_of(d)) for d in (special, gauge, station)] == [1, 1, 0]
        run_timers(T0 + minutes(75.5))
        assert [len(events_of(d)) for d in (special, gauge, station)] == [1, 1, 1]


def test_devices_never_heard_from_or_under_maintenance_are_not_watched(gauge):
    never = make_device(sensor_type="water_level")
    resting = make_device(sensor_type="water_level")
    seen(resting, T0)
    Feature.objects.filter(pk=resting.pk).update(status="maintenance")
    with configured(RULES):
        run_timers(T0 + minutes(60))
    assert events_of(never) == [] and events_of(resting) == [] and len(events_of(gauge)) == 1


def test_kinds_not_named_in_the_config_are_not_watched():
    boat = make_device("boat")
    seen(boat, T0)
    with configured(RULES):
        run_timers(T0 + minutes(600))
    assert events_of(boat) == []


def test_the_newest_reading_seen_by_evaluate_counts_as_contact_even_without_last_seen():
    device = make_device(sensor_type="water_level")
    with configured(RULES):
        evaluate([reading(device, minutes(0), {"level_cm": 100}), reading(device, minutes(3), {"level_cm": 101})])
        assert run_timers(T0 + minutes(9.9)) == {"offline": 0}
        assert run_timers(T0 + minutes(10.1)) == {"offline": 1}


def test_twin_check_offline_once_reports_what_it_did(gauge):
    out = StringIO()
    with configured(RULES):
        call_command("check_offline", now=(T0 + minutes(30)).isoformat(), stdout=out)
    assert "offline: 1 event(s)" in out.getvalue() and len(events_of(gauge)) == 1


@pytest.mark.parametrize("now, message", [("yesterday", "not an ISO-8601 time"), ("2026-11-24T08:00", "time zone")])
def test_twin_check_offline_refuses_a_bad_now(now, message):
    from django.core.management.base import CommandError

    with configured(RULES), pytest.raises(CommandError, match=message):
        call_command("check_offline", now=now)


def test_a_busy_device_is_noted_at_most_once_per_seen_resolution_not_at_every_batch(
        gauge, django_capture_on_commit_callbacks):
    """The newest reading time is rewritten when it moved by ``seen_resolution_s`` (5 s), not per batch."""
    from tests.ingestion.rules_support import state_of

    def batch(seconds: float) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            evaluate([reading(gauge, minutes(1) + timedelta(seconds=seconds), {"level_cm": 100})])

    with configured(RULES):
        batch(0)
        first = state_of("offline", str(gauge.pk)).state["last_reading"]
        batch(2)                   # 2 s later: not rewritten
        assert state_of("offline", str(gauge.pk)).state["last_reading"] == first
        batch(6)                   # 6 s after the noted one: rewritten
        assert state_of("offline", str(gauge.pk)).state["last_reading"] > first
        # ...and silences still count from the newest noted reading.
        assert run_timers(T0 + minutes(1) + timedelta(seconds=6) + minutes(7.1)) == {"offline": 1}
