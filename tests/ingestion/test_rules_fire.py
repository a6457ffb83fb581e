# SPDX-License-Identifier: AGPL-3.0-or-later
"""Fire alarms: immediate critical events, routed to the fire police, one per alarm, ended by the reset."""
from __future__ import annotations

import pytest

from ingestion.rules.engine import configured, evaluate
from tests.ingestion.rules_support import events_of, history, make_device, minutes, reading
from twin.models import EventStatus

pytestmark = pytest.mark.django_db

HUE_ROUTING = {"routing": {"fallback_agency": "hue-ioc"}}


@pytest.fixture
def panel():
    return make_device(sensor_type="fire_alarm", unit="state")


def test_an_alarm_reading_raises_an_immediate_critical_fire_event_routed_to_the_fire_police(panel):
    with configured(HUE_ROUTING):
        evaluate([reading(panel, minutes(0), {"alarm": True}, stream="fire")])
    [event] = events_of(panel)
    assert (event.kind, event.category, event.severity, event.status) == ("fire", "fire", 5, EventStatus.NEW)
    assert event.agency.code == "hue-pccc-cnch" and event.ward.code == "19753"
    assert event.geom.coords == pytest.approx(panel.geom.coords)
    assert event.payload["routing"]["step"] == "province_category"


def test_repeated_alarm_messages_update_one_event_instead_of_raising_new_ones(panel):
    with configured(HUE_ROUTING):
        evaluate([reading(panel, minutes(0), {"alarm": True}, stream="fire")])
        evaluate([reading(panel, minutes(m), {"alarm": True}, stream="fire") for m in (1, 2, 3)])
        evaluate([reading(panel, minutes(4), {"alarm": "ALARM"}, stream="fire")])
    [event] = events_of(panel)
    assert event.payload["alarm_readings"] == 5 and event.status == EventStatus.NEW


def test_the_reset_resolves_the_event_and_a_new_alarm_is_a_new_event(panel):
    with configured(HUE_ROUTING):
        evaluate([reading(panel, minutes(0), {"alarm": True}, stream="fire"),
                  reading(panel, minutes(5), {"alarm": False}, stream="fire")])
        evaluate([reading(panel, minutes(9), {"alarm": 1}, stream="fire")])
    first, second = events_of(panel)
    assert first.status == EventStatus.RESOLVED and "cleared_at" in first.payload
    assert history(first) == [("", "new", "rule:fire"), ("new", "resolved", "rule:fire")]
    assert second.status == EventStatus.NEW and second.source_key != first.source_key


def test_a_redelivered_alarm_after_the_reset_does_not_reopen_the_event(panel):
    with configured(HUE_ROUTING):
        evaluate([reading(panel, minutes(0), {"alarm": True}, stream="fire")])
        evaluate([reading(panel, minutes(5), {"alarm": "reset"}, stream="fire")])
        evaluate([reading(panel, minutes(0), {"alarm": True}, stream="fire")])   # QoS 1 redelivery
    [event] = events_of(panel)
    assert event.status == EventStatus.RESOLVED


def test_heartbeats_without_an_alarm_state_change_nothing(panel):
    with configured(HUE_ROUTING):
        evaluate([reading(panel, minutes(0), {"battery": 97}, stream="fire")])
    assert events_of(panel) == []


def test_an_alarm_key_on_a_non_fire_device_and_stream_is_ignored():
    gauge = make_device(sensor_type="water_level")
    with configured(HUE_ROUTING):
        evaluate([reading(gauge, minutes(0), {"alarm": True, "level_cm": 120}, stream="water_level")])
    assert events_of(gauge, "fire") == []


def test_an_operator_who_already_resolved_the_event_keeps_the_last_word(panel):
    from twin.services import transition_event

    with configured(HUE_ROUTING):
        evaluate([reading(panel, minutes(0), {"alarm": True}, stream="fire")])
        [event] = events_of(panel)
        transition_event(event.pk, "acknowledged", actor_label="operator")
        transition_event(event.pk, "resolved", actor_label="operator")
        evaluate([reading(panel, minutes(3), {"alarm": False}, stream="fire")])
    [event] = events_of(panel)
    assert [h[2] for h in history(event)] == ["rule:fire", "operator", "operator"]
