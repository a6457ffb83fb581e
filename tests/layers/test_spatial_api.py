# SPDX-License-Identifier: AGPL-3.0-or-later
"""Spatial query endpoints under /collections/{id}/...: results, access and OGC exception bodies.

Real PostGIS with the real Huế city; the answers are compared with the
Python functions (themselves checked against independent SQL in
``test_spatial_api_functions.py``) or with direct SQL.
"""
from __future__ import annotations

import json
import re

import pytest
import shapely
from django.db import connection

from layers import registry
from layers.collections import clear_extent_cache
from tests.twin.factories import NGO_MON, make_layer, offset, sensor_row
from twin.models import Feature
from twin.roles import Role
from twin.services import create_api_token, write_features
from twin.services.users import UserSpec, ensure_user

pytestmark = pytest.mark.django_db

GEOJSON = "application/geo+json"
SQL_WORDS = re.compile(r"(?i)\b(select|from\s+twin_|twin_feature|psycopg|traceback|ST_[A-Za-z]+\()")
IMPERIAL_CITY = [[107.5735, 16.4720], [107.5815, 16.4635], [107.5860, 16.4680], [107.5780, 16.4765],
                 [107.5735, 16.4720]]
IMPERIAL_WKT = "POLYGON((" + ", ".join(f"{x} {y}" for x, y in IMPERIAL_CITY) + "))"


@pytest.fixture(autouse=True)
def fresh_registry():
    registry.clear_caches()
    clear_extent_cache()
    yield
    registry.clear_caches()


@pytest.fixture
def private_layer(hue):
    """A private sensor layer with one sensor 30 m north of Ngọ Môn."""
    layer = make_layer(city=hue)
    write_features(layer, [sensor_row("s-30", *offset(NGO_MON, 0, 30))])
    return layer


def planner_token() -> str:
    user = ensure_user(UserSpec(username="spatial-planner", roles=(Role.PLANNER,)))[0]
    return create_api_token(user, "notebook")[1]


def body(response) -> dict:
    return json.loads(response.content)


def ids(response) -> list[str]:
    return [f["id"] for f in body(response)["features"]]


def assert_ogc_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:300]
    found = body(response)
    assert found["code"] == code and found["description"]
    assert not SQL_WORDS.search(found["description"]), found["description"]
    return found


def sql(text: str, params: list | tuple = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(text, params)
        return cursor.fetchall()


# --- nearest / within ----------------------------------------------------------------------------

def test_nearest_answers_geojson_with_distances_in_metres_and_export_links(client):
    response = client.get("/collections/hue-hospitals/nearest", {"lon": NGO_MON[0], "lat": NGO_MON[1], "limit": 4})
    assert response.status_code == 200 and response["Content-Type"] == GEOJSON
    found = body(response)
    assert found["type"] == "FeatureCollection" and found["numberReturned"] == 4
    expected = sql("SELECT f.external_id, ST_Distance(f.geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)"
                   "::geography) AS d FROM twin_feature f JOIN twin_layer l ON l.id = f.layer_id "
                   "WHERE l.slug = 'hue-hospitals' ORDER BY d LIMIT 4", NGO_MON)
    assert ids(response) == [e for e, _ in expected]
    assert [f["properties"]["distance_m"] for f in found["features"]] == pytest.approx([d for _, d in expected],
                                                                                       abs=0.01)
    assert found["attribution"] and {"self", "alternate", "collection"} <= {link["rel"] for link in found["links"]}
    assert any("f=kepler" in link["href"] for link in found["links"])


def test_within_returns_the_hotels_inside_the_radius_nearest_first(client):
    response = client.get("/collections/hue-hotels/within", {"lon": NGO_MON[0], "lat": NGO_MON[1], "radius_m": 1200})
    distances = [f["properties"]["distance_m"] for f in body(response)["features"]]
    assert distances and distances == sorted(distances) and max(distances) <= 1200


# --- areas and polygons ----------------------------------------------------------------------------

def test_hospitals_in_ward_19753_are_those_of_an_independent_query(client):
    response = client.get("/collections/hue-hospitals/area/19753")
    expected = sql("SELECT f.external_id FROM twin_feature f JOIN twin_layer l ON l.id = f.layer_id, "
                   "twin_adminarea a WHERE l.slug = 'hue-hospitals' AND a.level = 3 AND a.code = '19753' "
                   "AND ST_Intersects(f.geom, a.geom) ORDER BY f.external_id")
    assert response.status_code == 200 and ids(response) == [e for (e,) in expected]


def test_area_results_page_with_a_next_link(client):
    response = client.get("/collections/hue-buildings/area/19753", {"limit": 50})
    links = {link["rel"]: link["href"] for link in body(response)["links"] if link["rel"] != "alternate"}
    assert body(response)["numberReturned"] == 50 and "offset=50" in links["next"]
    following = client.get(links["next"].split("testserver", 1)[1])
    assert following.status_code == 200 and not set(ids(following)) & set(ids(response))


def test_area_by_province_code_needs_no_level(client):
    response = client.get("/collections/hue-fire-stations/area/46", {"level": "1"})
    assert response.status_code == 200
    assert body(response)["numberReturned"] == Feature.objects.filter(layer__slug="hue-fire-stations").count()


def test_drawn_polygon_as_wkt_geojson_and_post_body_give_the_same_features(client):
    by_wkt = client.get("/collections/hue-buildings/polygon", {"geom": IMPERIAL_WKT, "limit": 5000})
    geometry = {"type": "Polygon", "coordinates": [IMPERIAL_CITY]}
    by_geojson = client.get("/collections/hue-buildings/polygon", {"geom": json.dumps(geometry), "limit": 5000})
    by_post = client.post("/collections/hue-buildings/polygon?limit=5000",
                          json.dumps({"type": "Feature", "properties": {}, "geometry": geometry}),
                          content_type=GEOJSON)
    expected = sql("SELECT f.external_id FROM twin_feature f JOIN twin_layer l ON l.id = f.layer_id "
                   "WHERE l.slug = 'hue-buildings' AND ST_Intersects(f.geom, ST_GeomFromText(%s, 4326)) "
                   "ORDER BY f.external_id", [IMPERIAL_WKT])
    assert ids(by_wkt) == ids(by_geojson) == ids(by_post) == [e for (e,) in expected]


def test_along_orders_buildings_by_position_on_the_line(client):
    line = f"LINESTRING({NGO_MON[0]} {NGO_MON[1]}, 107.5900 16.4600)"
    response = client.get("/collections/hue-buildings/along", {"line": line, "buffer_m": 40})
    positions = [f["properties"]["along_m"] for f in body(response)["features"]]
    assert response.status_code == 200 and positions and positions == sorted(positions)
    assert all(f["properties"]["distance_m"] <= 40 for f in body(response)["features"])


# --- per ward ----------------------------------------------------------------------------------------------

def test_per_ward_is_a_choropleth_of_the_40_wards_whose_counts_add_up(client):
    response = client.get("/collections/hue-hospitals/per-ward")
    found = body(response)
    assert response.status_code == 200 and found["numberReturned"] == 40
    counts = {f["properties"]["ward_code"]: f["properties"]["count"] for f in found["features"]}
    assert sum(counts.values()) == found["totals"]["features"] == Feature.objects.filter(
        layer__slug="hue-hospitals").count()
    assert {f["geometry"]["type"] for f in found["features"]} == {"MultiPolygon"}
    assert "Vietnamese Provinces" in found["attribution"] and "OpenStreetMap" in found["attribution"]


def test_per_ward_table_gives_stats_of_a_numeric_property(client):
    response = client.get("/collections/hue-buildings/per-ward",
                          {"property": "height_m", "stats": "avg,max", "f": "table"})
    table = body(response)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert len(table["wards"]) == 40 and table["totals"]["outside"] == 0
    phu_xuan = next(w for w in table["wards"] if w["code"] == "19753")
    assert phu_xuan["count"] > 0 and phu_xuan["max_height_m"] >= phu_xuan["avg_height_m"] > 0


# --- access ----------------------------------------------------------------------------------------------

def test_a_private_layer_is_404_for_anonymous_callers_like_an_unknown_one(client, private_layer):
    params = {"lon": NGO_MON[0], "lat": NGO_MON[1]}
    private = client.get(f"/collections/{private_layer.slug}/nearest", params)
    unknown = client.get("/collections/no-such-layer/nearest", params)
    assert_ogc_error(private, 404, "NotFound")
    assert_ogc_error(unknown, 404, "NotFound")


def test_a_bearer_token_of_a_planner_reads_a_private_layer(client, private_layer):
    response = client.get(f"/collections/{private_layer.slug}/within",
                          {"lon": NGO_MON[0], "lat": NGO_MON[1], "radius_m": 100},
                          HTTP_AUTHORIZATION=f"Bearer {planner_token()}")
    assert ids(response) == ["s-30"]
    assert body(response)["features"][0]["properties"]["distance_m"] == pytest.approx(30, abs=0.5)


def test_a_bad_token_is_401_even_on_a_public_layer(client):
    response = client.get("/collections/hue-hospitals/nearest", {"lon": 107.5, "lat": 16.4},
                          HTTP_AUTHORIZATION="Bearer ct_0000_nope")
    assert_ogc_error(response, 401, "NotAuthenticated")


# --- bad input: 4xx with an OGC exception body, never a 500, never SQL -------------------------------------

BAD_REQUESTS = [
    ("nearest", {"lon": "abc", "lat": 16.4}, 400, "InvalidParameterValue", "lon"),
    ("nearest", {"lat": 16.4}, 400, "InvalidParameterValue", "lon"),
    ("nearest", {"lon": 107.5, "lat": 16.4, "limit": 5000}, 400, "InvalidParameterValue", "limit"),
    ("nearest", {"lon": 107.5, "lat": 16.4, "limit": 0}, 400, "InvalidParameterValue", "limit"),
    ("nearest", {"lon": 200, "lat": 16.4}, 400, "InvalidParameterValue", "longitude"),
    ("nearest", {"lon": 107.5, "lat": 16.4, "radius": 5}, 400, "InvalidParameterValue", "unknown"),
    ("within", {"lon": 107.5, "lat": 16.4, "radius_m": -10}, 400, "InvalidParameterValue", "radius"),
    ("within", {"lon": 107.5, "lat": 16.4, "radius_m": "nan"}, 400, "InvalidParameterValue", "finite"),
    ("area/99999", {}, 404, "NotFound", "99999"),
    ("area/19753", {"predicate": "touches"}, 400, "InvalidParameterValue", "predicate"),
    ("area/19753", {"level": "7"}, 400, "InvalidParameterValue", "level"),
    ("area/19753';DROP", {}, 400, "InvalidParameterValue", "code"),
    ("polygon", {}, 400, "InvalidParameterValue", "geom"),
    ("polygon", {"geom": "POLYGON((107.5 16.4, 107.6"}, 400, "InvalidParameterValue", "WKT"),
    ("polygon", {"geom": '{"type": "Polygon", "coordinates": "x"}'}, 400, "InvalidParameterValue", "GeoJSON"),
    ("polygon", {"geom": "POLYGON((107.57 16.46, 107.59 16.48, 107.59 16.46, 107.57 16.48, 107.57 16.46))"},
     400, "InvalidParameterValue", "Self-intersection"),
    ("polygon", {"geom": "POLYGON((100 5, 112 5, 112 22, 100 5))"}, 400, "InvalidParameterValue", "km²"),
    ("polygon", {"geom": "LINESTRING(107.5 16.4, 107.6 16.5)"}, 400, "InvalidParameterValue", "Polygon"),
    ("polygon", {"geom": "SRID=3857;POLYGON((0 0, 1 0, 1 1, 0 0))"}, 400, "InvalidParameterValue", "EPSG:4326"),
    ("along", {"line": "LINESTRING(107.57 16.46, 107.59 16.48)", "buffer_m": -5}, 400, "InvalidParameterValue",
     "buffer"),
    ("along", {"line": "LINESTRING(107.57 16.46, 107.59 16.48)"}, 400, "InvalidParameterValue", "buffer_m"),
    ("along", {"line": "POINT(107.57 16.46)", "buffer_m": 10}, 400, "InvalidParameterValue", "LineString"),
    ("per-ward", {"property": "name"}, 400, "InvalidParameterValue", "numeric"),
    ("per-ward", {"property": "height_m", "stats": "median"}, 400, "InvalidParameterValue", "median"),
    ("per-ward", {"f": "xlsx"}, 400, "InvalidParameterValue", "'f'"),
    ("export", {"filter": "name = 'x' AND"}, 400, "InvalidParameterValue", "filter"),
    ("export", {"bbox": "1,2,3"}, 400, "InvalidParameterValue", "bbox"),
]


@pytest.mark.parametrize("path, params, status, code, mentions", BAD_REQUESTS,
                         ids=[f"{p}-{'-'.join(map(str, q))}"[:60] for p, q, *_ in BAD_REQUESTS])
def test_bad_input_is_a_4xx_with_an_ogc_exception_saying_what_is_wrong(client, path, params, status, code,
                                                                      mentions):
    found = assert_ogc_error(client.get(f"/collections/hue-buildings/{path}", params), status, code)
    assert mentions.lower() in found["description"].lower()


def test_a_collection_that_is_not_a_feature_layer_has_no_spatial_queries(client):
    operator = ensure_user(UserSpec(username="spatial-operator", roles=(Role.OPERATOR,)))[0]
    token = create_api_token(operator, "console")[1]
    response = client.get("/collections/geo-events/nearest", {"lon": 107.5, "lat": 16.4},
                          HTTP_AUTHORIZATION=f"Bearer {token}")
    assert "feature layer" in assert_ogc_error(response, 400, "OperationNotSupported")["description"]


def test_repeated_parameters_are_refused(client):
    response = client.get("/collections/hue-hospitals/nearest?lon=107.5&lon=107.6&lat=16.4")
    assert_ogc_error(response, 400, "InvalidParameterValue")


def test_an_oversized_polygon_body_is_413(client):
    ring = [[107.5 + i * 1e-7, 16.4] for i in range(120_000)]
    payload = json.dumps({"type": "Polygon", "coordinates": [ring]})
    response = client.post("/collections/hue-buildings/polygon", payload, content_type=GEOJSON)
    assert_ogc_error(response, 413, "PayloadTooLarge")


def test_a_body_that_is_not_geojson_is_400(client):
    response = client.post("/collections/hue-buildings/polygon", "not json", content_type=GEOJSON)
    assert_ogc_error(response, 400, "InvalidParameterValue")


def test_delete_is_405_with_allow(client):
    response = client.delete("/collections/hue-buildings/polygon")
    assert_ogc_error(response, 405, "MethodNotAllowed")
    assert "POST" in response["Allow"]


def test_a_polygon_with_too_many_vertices_is_refused(client):
    ring = [list(offset(NGO_MON, 360 * i / 12_000, 500)) for i in range(12_000)]
    geometry = {"type": "Polygon", "coordinates": [ring + [ring[0]]]}
    response = client.post("/collections/hue-buildings/polygon", json.dumps(geometry), content_type=GEOJSON)
    assert "vertices" in assert_ogc_error(response, 400, "InvalidParameterValue")["description"]


def test_a_slow_query_is_a_400_query_too_expensive_not_a_500(client, settings):
    settings.SPATIAL_STATEMENT_TIMEOUT_MS = 1
    line = shapely.LineString([NGO_MON, offset(NGO_MON, 90, 5000)]).wkt
    response = client.get("/collections/hue-roads/along", {"line": line, "buffer_m": 5000})
    assert_ogc_error(response, 400, "QueryTooExpensive")
