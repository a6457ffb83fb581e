# SPDX-License-Identifier: AGPL-3.0-or-later
"""Vector tiles over HTTP: TileJSON, MVT decoded with a real decoder, errors, access, caching.

Real PostGIS with the real Huế city (tests/conftest.py); tiles are decoded
with ``mapbox-vector-tile``. Density (clusters, thinning) is in
test_tiles_density.py.
"""
from __future__ import annotations

import doctest
import gzip

import pytest
import shapely
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

import layers.tilefields
from layers.tileoverview import reset_memo
from tests.layers.tilehelpers import (NGO_MON, count_in_tile, decode, features, inside, point_layer, tile_of,
                                      url)
from twin.models import City, Layer
from twin.roles import Role
from twin.services import FeatureRow, create_api_token, write_features
from twin.services.features import bump_layer_versions
from twin.services.users import UserSpec, ensure_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_tile_cache():
    caches["tiles"].clear()
    reset_memo()
    yield
    caches["tiles"].clear()


@pytest.fixture
def sensors() -> Layer:
    """A public point layer with three sensors around Ngọ Môn."""
    layer = point_layer()
    write_features(layer, [
        FeatureRow("a", shapely.Point(*NGO_MON), {"sensor_type": "air_quality", "unit": "µg/m³"}, name="Cổng A"),
        FeatureRow("b", shapely.Point(NGO_MON[0] + 0.001, NGO_MON[1]), {"sensor_type": "water_level", "unit": "cm"},
                   name="Cổng B"),
        FeatureRow("c", shapely.Point(NGO_MON[0], NGO_MON[1] + 0.001), {"sensor_type": "noise", "unit": "dB"}),
    ])
    return layer


def planner_token() -> dict[str, str]:
    user, _ = ensure_user(UserSpec(username="tile-planner", roles=(Role.PLANNER,)))
    _, secret = create_api_token(user, "tiles")
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


# --- TileJSON ---

@pytest.mark.parametrize("path", ["/tiles/hue-buildings", "/tiles/hue-buildings.json"])
def test_tilejson_describes_the_layer_for_maplibre(client, path):
    response = client.get(path)
    assert response.status_code == 200
    doc = response.json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"] == ["http://testserver/tiles/hue-buildings/{z}/{x}/{y}.mvt"]
    assert doc["minzoom"] == 0 and doc["maxzoom"] == 18 and doc["scheme"] == "xyz"
    assert doc["name"] == Layer.objects.get(slug="hue-buildings").title_vi
    assert "OpenStreetMap" in doc["attribution"]
    west, south, east, north = doc["bounds"]
    city_w, city_s, city_e, city_n = City.objects.get(slug="hue").extent.extent
    assert city_w <= west < east <= city_e and city_s <= south < north <= city_n
    assert west <= doc["center"][0] <= east and south <= doc["center"][1] <= north
    (vector_layer,) = doc["vector_layers"]
    assert vector_layer["id"] == "hue-buildings"
    assert vector_layer["fields"] == {"id": "String", "name": "String", "status": "String", "height_m": "Number",
                                      "building": "String", "levels": "Number"}
    assert doc["features"] == 6877
    assert "public" in response["Cache-Control"] and response["ETag"].startswith('W/"')


def test_tilejson_of_a_point_layer_lists_cluster_fields(client, sensors):
    doc = client.get(f"/tiles/{sensors.slug}").json()
    fields = doc["vector_layers"][0]["fields"]
    assert fields["cluster"] == "Boolean" and fields["count"] == "Number"
    assert fields["sensor_type"] == "String"
    assert doc["bounds"] == pytest.approx([NGO_MON[0], NGO_MON[1], NGO_MON[0] + 0.001, NGO_MON[1] + 0.001])


def test_tilejson_escapes_attribution_because_maplibre_renders_html(client, sensors):
    Layer.objects.filter(pk=sensors.pk).update(attribution='<img src=x onerror="alert(1)">')
    assert "<img" not in client.get(f"/tiles/{sensors.slug}").json()["attribution"]


def test_tilejson_answers_304_to_its_etag(client):
    etag = client.get("/tiles/hue-roads")["ETag"]
    assert client.get("/tiles/hue-roads", HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_tile_index_lists_only_readable_layers(client):
    ids = {t["id"] for t in client.get("/tiles").json()["tilesets"]}
    assert "hue-buildings" in ids and "hue-fire-hydrants" not in ids  # hydrants are not public


# --- MVT content ---

def test_building_tile_decodes_with_height_for_3d_extrusion(client):
    tile = tile_of(*NGO_MON, 16)
    found = features(client.get(url("hue-buildings", tile)), "hue-buildings")
    assert found, "buildings around Ngọ Môn"
    assert {f["geometry"]["type"] for f in found} <= {"Polygon", "MultiPolygon"}
    assert all(isinstance(f["properties"]["height_m"], float) for f in found)
    assert all(f["properties"]["status"] == "active" and f["properties"]["id"] for f in found)
    assert all(isinstance(f["id"], int) for f in found)  # MVT feature id: stable, for feature-state


def test_road_tile_decodes_lines_with_road_attributes(client):
    found = features(client.get(url("hue-roads", tile_of(*NGO_MON, 15))), "hue-roads")
    assert found and {f["geometry"]["type"] for f in found} <= {"LineString", "MultiLineString"}
    assert all("highway" in f["properties"] for f in found)


def test_mixed_geometry_layer_tiles_decode(client):
    found = features(client.get(url("hue-rivers", tile_of(107.585, 16.47, 13))), "hue-rivers")
    assert found


def test_point_tile_holds_every_point_with_its_attributes(client, sensors):
    tile = tile_of(*NGO_MON, 15)
    found = features(client.get(url(sensors.slug, tile)), sensors.slug)
    by_id = {f["properties"]["id"]: f for f in found}
    assert set(by_id) == {"a", "b", "c"} and count_in_tile(sensors, tile) == 3
    assert by_id["a"]["properties"] == {"id": "a", "name": "Cổng A", "status": "active",
                                        "sensor_type": "air_quality", "unit": "µg/m³"}
    assert "name" not in by_id["c"]["properties"]  # empty names are left out, not ""
    assert by_id["a"]["geometry"]["type"] == "Point"


def test_points_of_the_neighbour_tile_come_in_the_buffer(client, sensors):
    z, x, y = tile_of(*NGO_MON, 18)
    found = features(client.get(url(sensors.slug, (z, x + 1, y))), sensors.slug)
    nearby = [f for f in found if f["properties"]["id"] == "a"]
    if nearby:  # only when Ngọ Môn lies within 64 units of the edge
        assert nearby[0]["geometry"]["coordinates"][0] < 0


def test_multipoints_in_a_point_layer_are_drawn(client):
    layer = point_layer()
    write_features(layer, [FeatureRow("m", shapely.MultiPoint([NGO_MON, (NGO_MON[0] + 0.0005, NGO_MON[1])]),
                                      {"sensor_type": "noise", "unit": "dB"})])
    (feature,) = features(client.get(url(layer.slug, tile_of(*NGO_MON, 15))), layer.slug)
    assert feature["geometry"]["type"] == "MultiPoint"


def test_empty_tile_is_204_with_caching_headers(client):
    response = client.get(url("hue-buildings", tile_of(0.0, 0.0, 12)))
    assert response.status_code == 204 and response.content == b""
    assert response["ETag"] and "max-age" in response["Cache-Control"]
    assert client.get(url("hue-buildings", tile_of(0.0, 0.0, 12)),
                      HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_pbf_extension_is_the_same_tile(client, sensors):
    tile = tile_of(*NGO_MON, 15)
    mvt, pbf = client.get(url(sensors.slug, tile)), client.get(url(sensors.slug, tile, "pbf"))
    assert decode(mvt.content) == decode(pbf.content)


def test_gzip_is_sent_to_clients_that_accept_it(client, sensors):
    tile = tile_of(*NGO_MON, 15)
    plain = client.get(url(sensors.slug, tile))
    zipped = client.get(url(sensors.slug, tile), HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert zipped["Content-Encoding"] == "gzip" and "Content-Encoding" not in plain
    assert decode(gzip.decompress(zipped.content)) == decode(plain.content)
    assert "Accept-Encoding" in zipped["Vary"]


def test_head_answers_headers_without_body(client, sensors):
    response = client.head(url(sensors.slug, tile_of(*NGO_MON, 15)))
    assert response.status_code == 200 and response.content == b"" and response["ETag"]


# --- bad input: a 4xx with an OGC exception body that says what is wrong, never a 500 ---

@pytest.mark.parametrize(("path", "says"), [
    ("/tiles/hue-roads/23/0/0.mvt", "zoom level z=23 is out of range"),
    ("/tiles/hue-roads/99999999/0/0.mvt", "zoom level"),
    ("/tiles/hue-roads/-1/0/0.mvt", "zoom level z must be a non-negative integer"),
    ("/tiles/hue-roads/abc/0/0.mvt", "zoom level z must be a non-negative integer"),
    ("/tiles/hue-roads/1.5/0/0.mvt", "zoom level z must be a non-negative integer"),
    ("/tiles/hue-roads/3/8/0.mvt", "tile column x=8 is out of range at zoom 3: 0 to 7"),
    ("/tiles/hue-roads/3/0/8.mvt", "tile row y=8 is out of range at zoom 3: 0 to 7"),
    ("/tiles/hue-roads/0/0/1.mvt", "tile row y=1 is out of range at zoom 0: 0 to 0"),
    ("/tiles/hue-roads/3/x/0.mvt", "tile column x must be a non-negative integer"),
    ("/tiles/hue-roads/3/0/%20.mvt", "tile row y must be a non-negative integer"),
    ("/tiles/hue-roads/3/0/0.png", "tile format '.png' is not supported"),
    ("/tiles/hue-roads/3/0/0", "tile format no extension is not supported"),
])
def test_bad_tile_address_is_400_saying_what_is_wrong(client, path, says):
    response = client.get(path)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "InvalidParameterValue"
    assert says in body["description"]


def test_bad_address_is_400_even_for_an_unknown_layer(client):
    assert client.get("/tiles/no-such-layer/30/0/0.mvt").status_code == 400


@pytest.mark.parametrize("path", ["/tiles/no-such-layer/1/0/0.mvt", "/tiles/no-such-layer",
                                  "/tiles/no-such-layer.json"])
def test_unknown_layer_is_404_ogc_exception(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"code": "NotFound", "description": "no collection 'no-such-layer'"}


def test_malformed_tile_path_is_404_explaining_the_url_form(client):
    response = client.get("/tiles/hue-roads/1/0")
    assert response.status_code == 404
    assert "/tiles/{layer}/{z}/{x}/{y}.mvt" in response.json()["description"]


def test_writes_are_405_with_allow():
    response = Client(enforce_csrf_checks=True).post(url("hue-roads", (1, 0, 0)))
    assert response.status_code == 405 and response.json()["code"] == "MethodNotAllowed"
    assert response["Allow"] == "GET, HEAD"


# --- access ---

def test_private_layer_is_404_for_anonymous_and_200_with_a_planner_token(client):
    tile = tile_of(107.58, 16.46, 10)
    assert client.get(url("hue-fire-hydrants", tile)).status_code == 404
    assert client.get("/tiles/hue-fire-hydrants").status_code == 404
    auth = planner_token()
    response = client.get(url("hue-fire-hydrants", tile), **auth)
    in_tile = [f for f in features(response, "hue-fire-hydrants") if inside(f)]
    assert len(in_tile) == count_in_tile(Layer.objects.get(slug="hue-fire-hydrants"), tile) > 0
    assert response["Cache-Control"].startswith("private")
    assert "Authorization" in response["Vary"]
    assert client.get("/tiles/hue-fire-hydrants", **auth).json()["tiles"][0].endswith("/{z}/{x}/{y}.mvt")


def test_refused_token_is_401_not_a_tile(client):
    response = client.get(url("hue-roads", (1, 0, 0)), HTTP_AUTHORIZATION="Bearer ct_nope_nope")
    assert response.status_code == 401 and response.json()["code"] == "NotAuthenticated"


# --- caching and invalidation ---

def test_if_none_match_is_304_without_rendering(client, sensors):
    tile = tile_of(*NGO_MON, 15)
    etag = client.get(url(sensors.slug, tile))["ETag"]
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url(sensors.slug, tile), HTTP_IF_NONE_MATCH=f'"other", {etag}')
    assert response.status_code == 304 and response["ETag"] == etag
    assert not any("twin_feature" in q["sql"] for q in queries.captured_queries)


def test_cached_tile_is_served_without_touching_the_feature_table(client, sensors):
    tile = tile_of(*NGO_MON, 15)
    first = client.get(url(sensors.slug, tile))
    assert first["X-Tile-Cache"] == "miss"
    with CaptureQueriesContext(connection) as queries:
        second = client.get(url(sensors.slug, tile))
    assert second["X-Tile-Cache"] == "hit" and second.content == first.content
    assert not any("twin_feature" in q["sql"] for q in queries.captured_queries)
    assert len(queries.captured_queries) == 1  # the layer, its access rule and its version, together


def test_write_features_changes_the_next_tile_and_its_etag(client, sensors):
    tile = tile_of(*NGO_MON, 15)
    before = client.get(url(sensors.slug, tile))
    write_features(sensors, [FeatureRow("a", shapely.Point(*NGO_MON), {"sensor_type": "air_quality", "unit": "ppm"},
                                        name="Cổng A mới", status="maintenance")])
    after = client.get(url(sensors.slug, tile), HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200 and after["X-Tile-Cache"] == "miss"
    assert after["ETag"] != before["ETag"]
    a = next(f for f in features(after, sensors.slug) if f["properties"]["id"] == "a")
    assert a["properties"]["name"] == "Cổng A mới" and a["properties"]["status"] == "maintenance"
    assert a["properties"]["unit"] == "ppm"


def test_an_unchanged_rewrite_keeps_the_cached_tile(client, sensors):
    tile = tile_of(*NGO_MON, 15)
    etag = client.get(url(sensors.slug, tile))["ETag"]
    write_features(sensors, [FeatureRow("c", shapely.Point(NGO_MON[0], NGO_MON[1] + 0.001),
                                        {"sensor_type": "noise", "unit": "dB"})])  # identical row
    again = client.get(url(sensors.slug, tile))
    assert again["ETag"] == etag and again["X-Tile-Cache"] == "hit"


def test_new_features_appear_in_the_next_tile(client, sensors):
    tile = tile_of(*NGO_MON, 15)
    client.get(url(sensors.slug, tile))
    write_features(sensors, [FeatureRow("d", shapely.Point(NGO_MON[0] + 0.0005, NGO_MON[1] + 0.0005),
                                        {"sensor_type": "smoke", "unit": "ppm"})])
    assert {f["properties"]["id"] for f in features(client.get(url(sensors.slug, tile)), sensors.slug)} == \
        {"a", "b", "c", "d"}


def test_deletes_outside_write_features_invalidate_through_bump_layer_versions(client, sensors):
    tile = tile_of(*NGO_MON, 15)
    etag = client.get(url(sensors.slug, tile))["ETag"]
    sensors.features.filter(external_id="b").delete()
    bump_layer_versions([sensors.pk])  # what the admin's delete does
    response = client.get(url(sensors.slug, tile))
    assert response["ETag"] != etag
    assert {f["properties"]["id"] for f in features(response, sensors.slug)} == {"a", "c"}


@pytest.mark.parametrize("how", ["delete view", "bulk action"])
def test_deleting_features_in_the_admin_changes_the_next_tile(admin_client, client, sensors, how):
    tile = tile_of(*NGO_MON, 15)
    etag = client.get(url(sensors.slug, tile))["ETag"]
    feature = sensors.features.get(external_id="b")
    if how == "delete view":
        response = admin_client.post(reverse("admin:twin_feature_delete", args=[feature.pk]), {"post": "yes"})
    else:
        response = admin_client.post(reverse("admin:twin_feature_changelist"),
                                     {"action": "delete_selected", "_selected_action": [feature.pk], "post": "yes"})
    assert response.status_code == 302
    after = client.get(url(sensors.slug, tile))
    assert after["ETag"] != etag
    assert {f["properties"]["id"] for f in features(after, sensors.slug)} == {"a", "c"}


def test_tilejson_follows_the_layer_extent_after_a_write(client, sensors):
    write_features(sensors, [FeatureRow("far", shapely.Point(107.7, 16.55), {"sensor_type": "noise", "unit": "dB"})])
    west, south, east, north = client.get(f"/tiles/{sensors.slug}").json()["bounds"]
    assert east == pytest.approx(107.7) and north == pytest.approx(16.55)


def test_tile_fields_doctests():
    assert doctest.testmod(layers.tilefields).failed == 0
