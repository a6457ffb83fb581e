# SPDX-License-Identifier: AGPL-3.0-or-later
"""The JSON API: resolve, nearest, within, events (real PostGIS, the real Huế city loaded)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
import shapely
from django.contrib.gis.geos import Point
from django.utils import timezone

from twin.models import EventStatus, GeoEvent, GeoEventTransition, Layer
from twin.roles import Role
from twin.services import (EventDraft, FeatureRow, LayerSpec, ensure_layer, raise_event, transition_event,
                           write_features)
from twin.services.users import UserSpec, ensure_user

pytestmark = pytest.mark.django_db
NGO_MON = (107.5786, 16.4679)  # the Meridian Gate of the Huế citadel, in ward Phú Xuân (19753)


def make_user(username: str, *roles: Role):
    return ensure_user(UserSpec(username=username, roles=tuple(roles)))[0]


def login(client, *roles: Role, username: str | None = None):
    user = make_user(username or "-".join(r.value for r in roles) or "norole", *roles)
    client.force_login(user)
    return user


@pytest.fixture
def test_layers() -> dict[str, Layer]:
    """A public and a private layer, each with one POI at (or a few metres from) Ngọ Môn."""
    public = ensure_layer(LayerSpec(slug="t-api-public", title_vi="Công khai", kind="poi", is_public=True))
    private = ensure_layer(LayerSpec(slug="t-api-private", title_vi="Nội bộ", kind="poi", is_public=False))
    write_features(public, [FeatureRow("pub-1", shapely.Point(NGO_MON[0] + 0.0001, NGO_MON[1]),
                                       {"poi_type": "other"}, name="public poi")])
    write_features(private, [FeatureRow("priv-1", shapely.Point(*NGO_MON), {"poi_type": "shelter"},
                                        name="private poi")])
    return {"public": public, "private": private}


@pytest.fixture
def fire_event():
    event, _ = raise_event(EventDraft(kind="alert", category="fire", geom=Point(*NGO_MON, srid=4326),
                                      occurred_at=timezone.now(), severity=4, title="Khói tại Ngọ Môn",
                                      payload={"smoke_ppm": 310, "reporter_phone": "0900000000"},
                                      producer="test"))
    return event


def names(response) -> list[str]:
    return [f["properties"]["name"] for f in response.json()["features"]]


# --- resolve ---

def test_resolve_ngo_mon_is_ward_19753_of_province_46(client):
    response = client.get("/api/resolve", {"lon": NGO_MON[0], "lat": NGO_MON[1], "category": "fire"})
    assert response.status_code == 200
    body = response.json()
    assert body["ward"]["code"] == "19753"
    assert body["province"]["code"] == "46"
    assert "hue-pccc-cnch" in [a["code"] for a in body["agencies"]]
    assert all("contact" in a for a in body["agencies"])


def test_resolve_outside_any_ward_answers_nulls(client):
    body = client.get("/api/resolve", {"lon": 0, "lat": 0}).json()
    assert body["ward"] is None and body["province"] is None and body["agencies"] == []


# --- nearest / within: public vs private layers ---

def test_anonymous_nearest_returns_only_public_layer_features(client, test_layers):
    response = client.get("/api/nearest", {"lon": NGO_MON[0], "lat": NGO_MON[1], "limit": 50})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/geo+json"
    features = response.json()["features"]
    assert "public poi" in names(response) and "private poi" not in names(response)
    slugs = {f["properties"]["layer"] for f in features}
    assert set(Layer.objects.filter(slug__in=slugs, is_public=True).values_list("slug", flat=True)) == slugs


def test_planner_nearest_sees_private_features_first_with_distance(client, test_layers):
    login(client, Role.PLANNER)
    body = client.get("/api/nearest", {"lon": NGO_MON[0], "lat": NGO_MON[1], "limit": 10}).json()
    assert body["numberReturned"] == 10
    found = {f["properties"]["name"]: f["properties"]["distance_m"] for f in body["features"]}
    assert found["private poi"] < 1  # areas containing the point (the citadel, the ward) are at 0 m too
    distances = [f["properties"]["distance_m"] for f in body["features"]]
    assert distances == sorted(distances)


def test_nearest_filters_by_layers_and_max_distance(client, test_layers):
    login(client, Role.OPERATOR)
    response = client.get("/api/nearest", {"lon": NGO_MON[0], "lat": NGO_MON[1], "layers": "t-api-public",
                                           "max_distance_m": 50})
    assert names(response) == ["public poi"]
    assert 5 < response.json()["features"][0]["properties"]["distance_m"] < 20


def test_anonymous_within_returns_only_public_layer_features(client, test_layers):
    response = client.get("/api/within", {"lon": NGO_MON[0], "lat": NGO_MON[1], "radius_m": 30,
                                          "layers": "t-api-public"})
    assert names(response) == ["public poi"]
    response = client.get("/api/within", {"lon": NGO_MON[0], "lat": NGO_MON[1], "radius_m": 30})
    assert "private poi" not in names(response)


def test_planner_within_sees_private_features(client, test_layers):
    login(client, Role.PLANNER)
    response = client.get("/api/within", {"lon": NGO_MON[0], "lat": NGO_MON[1], "radius_m": 30,
                                          "layers": "t-api-public,t-api-private"})
    assert names(response) == ["private poi", "public poi"]


def test_anonymous_asking_for_a_private_layer_is_401(client, test_layers):
    response = client.get("/api/nearest", {"lon": NGO_MON[0], "lat": NGO_MON[1], "layers": "t-api-private"})
    assert response.status_code == 401
    assert response.json()["code"] == "NotAuthenticated"


def test_user_without_role_asking_for_a_private_layer_is_403(client, test_layers):
    login(client, username="nobody")
    response = client.get("/api/within", {"lon": NGO_MON[0], "lat": NGO_MON[1], "radius_m": 10,
                                          "layers": "t-api-private"})
    assert response.status_code == 403


def test_private_layer_via_bearer_token(client, test_layers):
    from twin.services import create_api_token

    _, secret = create_api_token(make_user("tok-planner", Role.PLANNER), "gis")
    response = client.get("/api/within", {"lon": NGO_MON[0], "lat": NGO_MON[1], "radius_m": 10,
                                          "layers": "t-api-private"}, HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert names(response) == ["private poi"]


BAD_PARAMETERS = [
    ("/api/nearest", {"lon": "abc", "lat": 16.4}),
    ("/api/nearest", {"lon": 107.5}),
    ("/api/nearest", {"lon": 200, "lat": 16.4}),
    ("/api/nearest", {"lon": "nan", "lat": 16.4}),
    ("/api/nearest", {"lon": 107.5, "lat": 16.4, "limit": 5000}),
    ("/api/nearest", {"lon": 107.5, "lat": 16.4, "limit": 0}),
    ("/api/nearest", {"lon": 107.5, "lat": 16.4, "limit": "ten"}),
    ("/api/nearest", {"lon": 107.5, "lat": 16.4, "max_distance_m": -5}),
    ("/api/within", {"lon": 107.5, "lat": 16.4, "radius_m": 0}),
    ("/api/within", {"lon": 107.5, "lat": 16.4, "radius_m": 300000}),
    ("/api/within", {"lon": 107.5, "lat": 16.4}),
    ("/api/within", {"lon": 107.5, "lat": 16.4, "radius_m": "inf"}),
    ("/api/resolve", {"lon": "x", "lat": "y"}),
    ("/api/resolve", {"lat": 16.4}),
]


@pytest.mark.parametrize(("url", "params"), BAD_PARAMETERS)
def test_bad_parameter_is_400_invalid_parameter_value(client, url, params):
    response = client.get(url, params)
    assert response.status_code == 400
    assert response.json()["code"] == "InvalidParameterValue"
    assert response.json()["description"]


def test_unknown_layer_is_400_for_a_privileged_user(client):
    login(client, Role.PLANNER)
    response = client.get("/api/nearest", {"lon": 107.5, "lat": 16.4, "layers": "no-such-layer"})
    assert response.status_code == 400 and response.json()["code"] == "InvalidParameterValue"


# --- events ---

def post_transition(client, event_id: int, body, **extra):
    return client.post(f"/api/events/{event_id}/transition", json.dumps(body) if not isinstance(body, str) else body,
                       content_type="application/json", **extra)


def test_anonymous_event_transition_is_401(client, fire_event):
    response = post_transition(client, fire_event.pk, {"status": "acknowledged"})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_planner_event_transition_is_403(client, fire_event):
    login(client, Role.PLANNER)
    response = post_transition(client, fire_event.pk, {"status": "acknowledged"})
    assert response.status_code == 403
    assert response.json()["code"] == "PermissionDenied"
    fire_event.refresh_from_db()
    assert fire_event.status == "new"


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.RESPONDER])
def test_operator_and_responder_transition_and_history_records_the_actor(client, fire_event, role):
    user = login(client, role)
    response = post_transition(client, fire_event.pk, {"status": "acknowledged", "note": "đã nhận"})
    assert response.status_code == 200
    assert response.json()["properties"]["status"] == "acknowledged"
    step = GeoEventTransition.objects.filter(event=fire_event).latest("at")
    assert (step.from_status, step.to_status, step.actor, step.actor_label, step.note) == (
        "new", "acknowledged", user, user.get_username(), "đã nhận")
    history = response.json()["properties"]["history"]
    assert [h["to"] for h in history] == ["new", "acknowledged"]


def test_invalid_transition_is_409(client, fire_event):
    login(client, Role.OPERATOR)
    assert post_transition(client, fire_event.pk, {"status": "dismissed"}).status_code == 200
    response = post_transition(client, fire_event.pk, {"status": "resolved"})
    assert response.status_code == 409 and response.json()["code"] == "InvalidTransition"


@pytest.mark.parametrize("body", ['{"status": "flying"}', "not json", "[1, 2]", "{}",
                                  '{"status": "resolved", "note": 5}'])
def test_bad_transition_body_is_400(client, fire_event, body):
    login(client, Role.OPERATOR)
    response = post_transition(client, fire_event.pk, body)
    assert response.status_code == 400 and response.json()["code"] == "InvalidParameterValue"


def test_transition_of_missing_event_is_404(client):
    login(client, Role.RESPONDER)
    assert post_transition(client, 987654321, {"status": "acknowledged"}).status_code == 404


def test_events_list_needs_read_events(client, fire_event):
    login(client, Role.PLANNER)
    assert client.get("/api/events").status_code == 403


def test_events_list_filters_pages_and_hides_reporter_identity(client, fire_event):
    raise_event(EventDraft(kind="alert", category="flood", geom=Point(*NGO_MON, srid=4326),
                           occurred_at=timezone.now(), producer="test"))
    login(client, Role.TOURISM_OFFICER)
    body = client.get("/api/events", {"category": "fire", "status": "new,acknowledged"}).json()
    event = next(f for f in body["features"] if f["id"] == fire_event.pk)
    assert event["properties"]["payload"] == {"smoke_ppm": 310}
    assert event["properties"]["ward"]["code"] == "19753"
    assert all(f["properties"]["category"] == "fire" for f in body["features"])
    page = client.get("/api/events", {"limit": 1}).json()
    assert page["numberReturned"] == 1
    assert [link["rel"] for link in page["links"]] == ["self", "next"]
    assert "offset=1" in page["links"][1]["href"]


@pytest.mark.parametrize("params", [{"limit": 5000}, {"offset": -1}, {"status": "bogus"}, {"limit": "x"}])
def test_bad_events_parameter_is_400(client, params):
    login(client, Role.OPERATOR)
    response = client.get("/api/events", params)
    assert response.status_code == 400 and response.json()["code"] == "InvalidParameterValue"


def test_event_detail_has_history(client, fire_event):
    login(client, Role.LEADER)
    body = client.get(f"/api/events/{fire_event.pk}").json()
    assert body["properties"]["history"][0]["actor"] == "test"


# --- events in time (the map's replay) ---

def _aged_fire_event(fire_event):
    """The fire event raised 3 h ago, acknowledged 2 h ago and resolved 1 h ago."""
    now = timezone.now()
    transition_event(fire_event.pk, EventStatus.ACKNOWLEDGED, actor_label="test")
    transition_event(fire_event.pk, EventStatus.RESOLVED, actor_label="test")
    for hours, status in ((3, "new"), (2, "acknowledged"), (1, "resolved")):
        GeoEventTransition.objects.filter(event=fire_event, to_status=status).update(at=now - timedelta(hours=hours))
    GeoEvent.objects.filter(pk=fire_event.pk).update(occurred_at=now - timedelta(hours=3),
                                                     updated_at=now - timedelta(hours=1))
    return now


def _listed(client, **params) -> dict[int, dict]:
    body = client.get("/api/events", {k: v.isoformat() if hasattr(v, "isoformat") else v
                                      for k, v in params.items()}).json()
    return {f["id"]: f["properties"] for f in body["features"]}


def test_events_as_of_a_moment_carry_the_status_they_had_then(client, fire_event):
    now = _aged_fire_event(fire_event)
    login(client, Role.OPERATOR)
    for minutes_ago, expected in ((150, "new"), (90, "acknowledged"), (30, "resolved")):
        found = _listed(client, as_of=now - timedelta(minutes=minutes_ago))
        assert found[fire_event.pk]["status_as_of"] == expected, minutes_ago
    assert fire_event.pk not in _listed(client, as_of=now - timedelta(hours=4))  # not yet happened


def test_events_since_until_keep_those_active_in_the_window(client, fire_event):
    now = _aged_fire_event(fire_event)
    login(client, Role.OPERATOR)
    assert fire_event.pk in _listed(client, since=now - timedelta(hours=2), until=now)
    assert fire_event.pk not in _listed(client, since=now - timedelta(minutes=30))  # closed an hour ago
    assert fire_event.pk not in _listed(client, until=now - timedelta(hours=4))  # occurred later


@pytest.mark.parametrize("params", [{"since": "yesterday"}, {"as_of": "2026-13-40T00:00:00Z"},
                                    {"since": "2026-11-24T10:00:00Z", "until": "2026-11-24T09:00:00Z"}])
def test_bad_event_time_parameter_is_400(client, params):
    login(client, Role.OPERATOR)
    response = client.get("/api/events", params)
    assert response.status_code == 400 and response.json()["code"] == "InvalidParameterValue"
