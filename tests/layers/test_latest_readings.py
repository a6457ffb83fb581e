# SPDX-License-Identifier: AGPL-3.0-or-later
"""``/collections/{id}/latest``: each feature's latest values as of a moment (the map's replay)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.gis.geos import Point
from django.db import connection

from layers.latest import LATEST_SQL, LOOK_BACK
from tests.layers.ogc_fixtures import *  # noqa: F403
from tests.layers.ogc_fixtures import api_get, assert_ogc_error, json_of
from twin.models import GeoEventTransition
from twin.services import EventDraft, ObservationRow, raise_event, record_observations, transition_event
from twin.services.observations import ensure_partitions

pytestmark = pytest.mark.django_db

START = datetime(2025, 8, 1, 8, 0, tzinfo=UTC)


def _readings(client, layer, token, **params) -> dict[str, dict]:
    response = api_get(client, f"/collections/{layer.slug}/latest?"
                       + "&".join(f"{k}={v}" for k, v in params.items()), token)
    assert response.status_code == 200, response.content[:300]
    body = json_of(response)
    assert body["numberReturned"] == len(body["readings"])
    return {r["feature"]: r for r in body["readings"]}


@pytest.fixture
def readings(private_sensor_layer):
    """s00 reads pm25 10 at 08:00 and 80 at 09:00; s01 reads once at 08:30; the rest never."""
    ids = dict(private_sensor_layer.features.values_list("external_id", "id"))
    ensure_partitions(START - LOOK_BACK, START + timedelta(days=1))
    record_observations([ObservationRow(ids["s00"], START, {"pm25": 10}),
                         ObservationRow(ids["s00"], START + timedelta(hours=1), {"pm25": 80}),
                         ObservationRow(ids["s01"], START + timedelta(minutes=30), {"pm25": 30})])
    return ids


def test_each_feature_gets_its_latest_values_at_or_before_the_moment(client, private_sensor_layer, readings,
                                                                     planner_token):
    early = _readings(client, private_sensor_layer, planner_token, datetime="2025-08-01T08:10:00Z")
    assert early["s00"]["values"] == {"pm25": 10} and early["s00"]["time"].startswith("2025-08-01T08:00")
    assert early["s01"]["values"] is None, "its first reading came later"
    late = _readings(client, private_sensor_layer, planner_token, datetime="2025-08-01T09:00:00Z")
    assert late["s00"]["values"] == {"pm25": 80} and late["s01"]["values"] == {"pm25": 30}
    assert len(late) == 12 and not any(r["offline"] for r in late.values())


def test_a_reading_older_than_the_look_back_window_counts_as_none(client, private_sensor_layer, readings,
                                                                  planner_token):
    much_later = (START + LOOK_BACK + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    assert _readings(client, private_sensor_layer, planner_token, datetime=much_later)["s00"]["values"] is None


def test_a_device_counts_as_offline_while_its_offline_event_was_open(client, private_sensor_layer, readings,
                                                                     planner_token):
    feature = private_sensor_layer.features.get(external_id="s01")
    event, _ = raise_event(EventDraft(kind="offline", category="device_offline", geom=Point(feature.geom.x,
                                      feature.geom.y, srid=4326), occurred_at=START + timedelta(hours=2),
                                      source_feature_id=feature.pk))
    transition_event(event.pk, "resolved", actor_label="test")
    GeoEventTransition.objects.filter(event=event, to_status="resolved").update(at=START + timedelta(hours=3))
    at = lambda h: (START + timedelta(hours=h)).isoformat().replace("+00:00", "Z")  # noqa: E731
    assert not _readings(client, private_sensor_layer, planner_token, datetime=at(1))["s01"]["offline"]
    assert _readings(client, private_sensor_layer, planner_token, datetime=at(2.5))["s01"]["offline"]
    assert not _readings(client, private_sensor_layer, planner_token, datetime=at(4))["s01"]["offline"]


def test_a_private_layer_is_404_for_the_public_and_a_layer_without_observations_is_refused(
        client, private_sensor_layer):
    assert_ogc_error(client.get(f"/collections/{private_sensor_layer.slug}/latest"), 404)
    assert_ogc_error(client.get("/collections/hue-wards/latest"), 400)
    assert_ogc_error(client.get("/collections/no-such-layer/latest"), 404)


@pytest.mark.parametrize("params", ["datetime=yesterday", "datetime=2025-08-01T08:00:00Z/..", "limit=0",
                                    "limit=10001", "bbox=1,2,3,4"])
def test_bad_parameters_are_a_400_that_says_which(client, private_sensor_layer, planner_token, params):
    body = assert_ogc_error(api_get(client, f"/collections/{private_sensor_layer.slug}/latest?{params}",
                                    planner_token), 400)
    assert params.split("=")[0] in body["description"]


def test_pages_follow_next_links(client, private_sensor_layer, readings, planner_token):
    body = json_of(api_get(client, f"/collections/{private_sensor_layer.slug}/latest?limit=5", planner_token))
    assert body["numberReturned"] == 5 and any(link["rel"] == "next" for link in body["links"])


def test_the_query_probes_the_time_index_per_feature_instead_of_scanning_observations(private_sensor_layer,
                                                                                      readings):
    at = START + timedelta(hours=1)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = on")
        cursor.execute("EXPLAIN (FORMAT TEXT) " + LATEST_SQL,
                       {"at": at, "since": at - LOOK_BACK, "closed": ["resolved", "dismissed"],
                        "layer": private_sensor_layer.pk, "limit": 5001, "offset": 0})
        plan = "\n".join(row[0] for row in cursor.fetchall())
    observation_lines = [line for line in plan.splitlines() if "twin_observation" in line]
    assert observation_lines, plan
    assert not any("Seq Scan" in line for line in observation_lines), plan
    assert "Limit" in plan and "Index" in plan, plan
