# SPDX-License-Identifier: AGPL-3.0-or-later
"""Geofence: moving features entering and leaving zone polygons; one event per stay, one spatial query per batch."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from shapely.geometry import box

from ingestion.rules.engine import configured, evaluate
from tests.ingestion.rules_support import T0, events_of, history, make_device, minutes, reading, state_of
from tests.twin.factories import make_layer, offset
from twin.models import EventStatus, Feature
from twin.services import FeatureRow, write_features

pytestmark = pytest.mark.django_db

ZONE = {"layer": "hue-imperial-city", "kinds": ["boat"], "category": "heritage", "severity": 3, "exit_grace_s": 0}


def rules(**zone):
    return {"routing": {"fallback_agency": "hue-ioc"}, "rules": {"geofence": {"zones": [{**ZONE, **zone}]}}}


@pytest.fixture
def citadel():
    return Feature.objects.get(layer__slug="hue-imperial-city")


@pytest.fixture
def places(citadel):
    inside = citadel.geom.point_on_surface
    outside = offset((inside.x, inside.y), 90, 1500)
    return (inside.x, inside.y), outside


def fix(boat, at_min, where):
    return reading(boat, minutes(at_min), {"speed_kn": 3}, stream="position", lon=where[0], lat=where[1])


def test_entering_a_zone_opens_an_event_at_the_position_routed_by_its_category(places, citadel):
    boat = make_device("boat")
    inside, outside = places
    with configured(rules()):
        evaluate([fix(boat, 0, outside), fix(boat, 5, inside)])
    [event] = events_of(boat)
    assert (event.kind, event.category, event.status) == ("geofence", "heritage", EventStatus.NEW)
    assert event.occurred_at == T0 + minutes(5) and event.geom.coords == pytest.approx(inside)
    assert event.agency.code == "hue-bao-ton-di-tich" and event.payload["zone"] == citadel.name
    assert state_of("geofence", f"{boat.pk}:{citadel.pk}").state["inside"] is True


def test_staying_inside_updates_the_one_event_and_leaving_resolves_it(places):
    boat = make_device("boat")
    inside, outside = places
    nearby = offset(inside, 0, 20)
    with configured(rules()):
        evaluate([fix(boat, 0, inside)])
        evaluate([fix(boat, 1, nearby)])
        evaluate([fix(boat, 2, inside), fix(boat, 3, nearby)])
        [event] = events_of(boat)
        assert event.payload["position"] == pytest.approx(list(nearby)) and event.status == EventStatus.NEW
        evaluate([fix(boat, 4, outside)])
    [event] = events_of(boat)
    assert event.status == EventStatus.RESOLVED
    assert (event.payload["entered_at"][:16], event.payload["left_at"][:16]) == ("2026-11-24T08:00", "2026-11-24T08:04")
    assert history(event) == [("", "new", "rule:geofence"), ("new", "resolved", "rule:geofence")]


def test_coming_back_is_a_new_stay_and_a_new_event(places):
    boat = make_device("boat")
    inside, outside = places
    with configured(rules()):
        evaluate([fix(boat, 0, inside), fix(boat, 1, outside), fix(boat, 2, inside)])
    first, second = events_of(boat)
    assert first.status == EventStatus.RESOLVED and second.status == EventStatus.NEW


def test_exit_grace_absorbs_gps_jitter_along_the_edge(places):
    boat = make_device("boat")
    inside, outside = places
    with configured(rules(exit_grace_s=120)):
        evaluate([fix(boat, 0, inside), fix(boat, 1, outside), fix(boat, 2, inside), fix(boat, 3, outside)])
        [event] = events_of(boat)
        assert event.status == EventStatus.NEW
        evaluate([fix(boat, 5, outside)])
    [event] = events_of(boat)
    assert event.status == EventStatus.RESOLVED and event.payload["left_at"][:16] == "2026-11-24T08:03"


def test_inside_or_outside_survives_a_restart_because_it_is_kept_in_rule_state(places):
    boat = make_device("boat")
    inside, outside = places
    with configured(rules()):
        evaluate([fix(boat, 0, inside)])
    with configured(rules()):                     # a new engine, as after a worker restart
        evaluate([fix(boat, 1, inside)])
        evaluate([fix(boat, 2, outside)])
    [event] = events_of(boat)
    assert event.status == EventStatus.RESOLVED


def test_a_feature_inside_two_zones_has_one_event_per_zone(places):
    boat = make_device("boat")
    inside, _ = places
    zones = make_layer("generic", "Polygon")
    write_features(zones, [FeatureRow(external_id="cam-bay", name="Vùng cấm neo đậu",
                                      geom=box(inside[0] - 0.001, inside[1] - 0.001, inside[0] + 0.001,
                                               inside[1] + 0.001))])
    config = {"rules": {"geofence": {"zones": [ZONE, {"layer": zones.slug, "category": "security"}]}}}
    with configured(config):
        evaluate([fix(boat, 0, inside)])
    assert sorted(e.category for e in events_of(boat)) == ["heritage", "security"]


def test_only_configured_kinds_and_readings_with_a_position_are_watched(places):
    gauge = make_device(sensor_type="water_level")
    boat = make_device("boat")
    inside, _ = places
    with configured(rules()):
        evaluate([reading(gauge, minutes(0), {"level_cm": 1}, lon=inside[0], lat=inside[1]),
                  reading(boat, minutes(0), {"speed_kn": 1}, stream="position")])
    assert events_of(gauge) == [] and events_of(boat) == []


def test_a_batch_of_many_boats_costs_one_spatial_query(places):
    inside, outside = places
    boats = [make_device("boat") for _ in range(5)]
    batch = [fix(boat, m, inside if (m + i) % 3 else outside) for i, boat in enumerate(boats) for m in range(10)]
    with configured(rules()), CaptureQueriesContext(connection) as queries:
        evaluate(batch)
    spatial = [q["sql"] for q in queries.captured_queries if "ST_Covers(z.geom" in q["sql"]]
    assert len(spatial) == 1
    assert all(events_of(boat) for boat in boats)
