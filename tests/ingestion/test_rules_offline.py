# SPDX-License-Identifier: AGPL-3.0-or-later
"""Offline timers: a device silent past its reporting period plus grace gets one event, ended when it reports again."""
from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from ingestion.models import RuleState
from ingestion.rules.context import BatchContext
from ingestion.rules.engine import configured, evaluate, get_engine, run_timers
from ingestion.rules.episodes import iso
from ingestion.sink import commit
from tests.ingestion.rules_support import T0, events_of, history, make_device, minutes, reading
from twin.models import DeviceLiveness, EventStatus, Feature

pytestmark = pytest.mark.django_db

RULES = {"routing": {"fallback_agency": "hue-ioc", "city_categories": {"device_offline": "hue-ioc"}},
         "rules": {"offline": {"kinds": {"sensor": {"period_s": 300, "grace_s": 120},
                                         "sensor.air_quality": {"period_s": 3600, "grace_s": 900}}}}}


def seen(device, at):
    DeviceLiveness.objects.update_or_create(feature=device, defaults={"last_seen": at})


def report(device, *readings):
    """Readings as a worker handles them: stored with the device's liveness first, then the rules."""
    commit(readings)
    evaluate(list(readings))


def offline_evaluates(readings):
    """The offline rule's ``evaluate`` alone, in a transaction as the engine runs it."""
    engine = get_engine()
    rule = next(r for r in engine.rules if r.name == "offline")
    with transaction.atomic():
        rule.evaluate(readings, BatchContext(readings, engine.devices))


def rulestate_activity():
    """Rows written to and scans of ``ingestion_rulestate`` so far in this transaction (PostgreSQL's own counts)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT n_tup_ins + n_tup_upd + n_tup_del, seq_scan + coalesce(idx_scan, 0)"
                       "  FROM pg_stat_xact_user_tables WHERE relid = %s::regclass", [RuleState._meta.db_table])
        return cursor.fetchone()


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
        report(gauge, reading(gauge, minutes(12), {"level_cm": 120}))
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


def test_readings_stored_by_the_sink_count_as_contact_without_any_rule_state():
    device = make_device(sensor_type="water_level")
    with configured(RULES):
        report(device, reading(device, minutes(0), {"level_cm": 100}), reading(device, minutes(3), {"level_cm": 101}))
        assert not RuleState.objects.filter(rule="offline", subject=str(device.pk)).exists()
        assert run_timers(T0 + minutes(9.9)) == {"offline": 0}
        assert run_timers(T0 + minutes(10.1)) == {"offline": 1}


def test_a_last_reading_left_in_rule_state_by_an_older_version_still_counts_as_contact():
    device = make_device(sensor_type="water_level")
    RuleState.objects.create(rule="offline", subject=str(device.pk), state={"last_reading": iso(T0 + minutes(3))})
    with configured(RULES):
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


def test_readings_from_devices_without_an_open_event_write_no_rule_state(gauge):
    quiet = make_device(sensor_type="water_level")
    seen(quiet, T0 + minutes(5))                                           # not silent at +10
    with configured(RULES):
        run_timers(T0 + minutes(10))
        report(gauge, reading(gauge, minutes(11), {"level_cm": 120}))      # closes its event: its row stays
        rows = list(RuleState.objects.filter(rule="offline").order_by("subject").values())
        batch = [reading(d, minutes(12), {"level_cm": 121}) for d in (gauge, quiet)]
        commit(batch)
        written, scans = rulestate_activity()
        offline_evaluates(batch)
        after_written, after_scans = rulestate_activity()
        assert after_written == written and after_scans > scans             # read, not written
    assert list(RuleState.objects.filter(rule="offline").order_by("subject").values()) == rows
    assert [row["subject"] for row in rows] == [str(gauge.pk)]              # none was made for the quiet device
    assert "last_reading" not in rows[0]["state"]


def test_a_busy_device_is_checked_for_an_open_event_at_most_once_per_seen_resolution(
        gauge, django_capture_on_commit_callbacks):
    """Its newest reading must move by ``seen_resolution_s`` (5 s) before this worker looks again."""

    def scans_for_batch(seconds: float) -> int:
        batch = [reading(gauge, minutes(1) + timedelta(seconds=seconds), {"level_cm": 100})]
        before = rulestate_activity()[1]
        with django_capture_on_commit_callbacks(execute=True):
            offline_evaluates(batch)
        return rulestate_activity()[1] - before

    with configured(RULES):
        assert [scans_for_batch(s) > 0 for s in (0, 2, 4, 6, 7)] == [True, False, False, True, False]


def test_a_reading_stored_while_the_timer_opened_an_event_ends_it_at_the_next_check(gauge):
    """The race the timer's second look under the locks cannot close: the sink commits ``last_seen``
    after that look, and the rule's read of open events runs before the timer commits its event."""
    with configured(RULES):
        late = reading(gauge, minutes(9), {"level_cm": 120})
        offline_evaluates([late])                      # saw no open event: the timer's was not committed yet
        run_timers(T0 + minutes(9))                    # the timer's look at last_seen came first
        commit([late])                                 # ...and the sink's liveness after it
        [event] = events_of(gauge)
        assert event.status == EventStatus.NEW
        assert run_timers(T0 + minutes(10)) == {"offline": 1}
    [event] = events_of(gauge)
    assert event.status == EventStatus.RESOLVED and history(event)[-1] == ("new", "resolved", "rule:offline")
