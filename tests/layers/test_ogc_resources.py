# SPDX-License-Identifier: AGPL-3.0-or-later
"""OGC API – Features resources: landing page, conformance, OpenAPI, collections, queryables, HTML, access."""
from __future__ import annotations

import re

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from tests.layers.ogc_fixtures import *  # noqa: F403
from tests.layers.ogc_fixtures import api_get, assert_ogc_error, json_of
from twin.models import Layer
from twin.services import EventDraft, raise_event

pytestmark = pytest.mark.django_db


def rels(body: dict) -> dict[str, dict]:
    return {(link["rel"], link["type"]): link for link in body["links"]}


def test_landing_page_links_api_definition_conformance_and_collections(client):
    response = client.get("/")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    links = rels(json_of(response))
    assert links[("service-desc", "application/vnd.oai.openapi+json;version=3.0")]["href"].endswith("/api")
    assert links[("conformance", "application/json")]["href"].endswith("/conformance")
    assert links[("data", "application/json")]["href"].endswith("/collections")
    assert ("alternate", "text/html") in links


def test_conformance_lists_core_geojson_html_oas30_and_cql2_classes(client):
    conforms = json_of(client.get("/conformance"))["conformsTo"]
    for cls in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/geojson",
                "ogcapi-features-1/1.0/conf/html", "ogcapi-features-1/1.0/conf/oas30",
                "ogcapi-features-3/1.0/conf/filter", "ogcapi-features-3/1.0/conf/features-filter",
                "cql2/1.0/conf/cql2-text", "cql2/1.0/conf/cql2-json", "cql2/1.0/conf/basic-cql2"):
        assert f"http://www.opengis.net/spec/{cls}" in conforms
    assert not any("temporal-functions" in c or "array-functions" in c for c in conforms)


def test_api_definition_is_openapi_30_with_the_items_parameters(client):
    response = client.get("/api")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.oai.openapi+json;version=3.0"
    doc = json_of(response)
    assert doc["openapi"].startswith("3.0")
    items = doc["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
    names = {p["$ref"].rsplit("/", 1)[1] for p in items}
    assert names >= {"bbox", "bbox-crs", "datetime", "limit", "offset", "sortby", "properties", "filter",
                     "filter-lang", "filter-crs"}
    assert doc["components"]["parameters"]["limit"]["schema"]["maximum"] == 10_000


def test_anonymous_collections_are_the_public_layers_only(client):
    ids = {c["id"] for c in json_of(client.get("/collections"))["collections"]}
    public = set(Layer.objects.filter(is_public=True).values_list("slug", flat=True))
    assert ids == public
    assert "hue-fire-hydrants" not in ids and "geo-events" not in ids


def test_collection_has_extent_item_type_and_links_to_items_queryables_and_tiles(client):
    body = json_of(client.get("/collections/hue-hospitals"))
    assert body["id"] == "hue-hospitals" and body["itemType"] == "feature"
    minx, miny, maxx, maxy = body["extent"]["spatial"]["bbox"][0]
    assert 107.3 < minx < maxx < 107.9 and 16.2 < miny < maxy < 16.8
    links = rels(body)
    assert links[("items", "application/geo+json")]["href"].endswith("/collections/hue-hospitals/items")
    assert ("http://www.opengis.net/def/rel/ogc/1.0/queryables", "application/schema+json") in links
    assert links[("http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", "application/json")]["href"].endswith(
        "/tiles/hue-hospitals")
    assert "OpenStreetMap" in body["attribution"]


def test_queryables_are_a_json_schema_derived_from_the_kind(client):
    response = client.get("/collections/hue-roads/queryables")
    assert response.status_code == 200 and response["Content-Type"] == "application/schema+json"
    schema = json_of(response)
    props = schema["properties"]
    assert props["geometry"]["x-ogc-role"] == "primary-geometry"
    assert props["geometry"]["format"] == "geometry-linestring"
    assert props["name"]["type"] == "string" and props["height_m"]["type"] == "number"
    assert props["lanes"]["type"] == "integer" and props["highway"]["type"] == "string"
    assert props["oneway"]["enum"] == [-1, 0, 1]
    assert props["last_seen"]["format"] == "date-time"
    assert "analytics" not in props  # lists are not queryable


def test_temporal_queryable_carries_the_primary_instant_role(client, report_layer):
    props = json_of(client.get(f"/collections/{report_layer.slug}/queryables"))["properties"]
    assert props["reported_at"]["x-ogc-role"] == "primary-instant"


@pytest.mark.parametrize("url", ["/", "/collections", "/collections/hue-hospitals", "/conformance",
                                 "/collections/hue-hospitals/items", "/collections/hue-hospitals/queryables",
                                 "/api"])
def test_every_resource_has_a_vietnamese_html_page_by_default(client, url):
    response = client.get(url, {"f": "html"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    text = response.content.decode()
    assert '<html lang="vi">' in text and ("Bộ dữ liệu" in text or "Mô tả API" in text or "Các chuẩn" in text)


def test_html_pages_switch_to_english_with_lang_or_accept_language(client):
    by_param = client.get("/collections", {"f": "html", "lang": "en"}).content.decode()
    by_header = client.get("/collections", {"f": "html"}, HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9").content.decode()
    for text in (by_param, by_header):
        assert '<html lang="en">' in text and "Collections" in text and "Bộ dữ liệu" not in text


def test_browsers_get_html_from_the_accept_header_and_clients_get_json(client):
    browser = client.get("/collections/hue-hospitals/items", HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert browser["Content-Type"].startswith("text/html")
    assert "Bệnh viện" in browser.content.decode()
    gdal = client.get("/collections/hue-hospitals/items", HTTP_ACCEPT="application/geo+json, application/json")
    assert gdal["Content-Type"] == "application/geo+json"


def test_landing_html_links_admin_and_collections_and_shows_attribution(client):
    text = client.get("/?f=html").content.decode()
    assert 'href="http://testserver/admin/"' in text and "/collections?f=html" in text
    assert "OpenStreetMap contributors" in text and "Thang Le Quoc" in text


def test_feature_html_page_lists_its_properties(client):
    feature_id = json_of(client.get("/collections/hue-hospitals/items?limit=1"))["features"][0]["id"]
    text = client.get(f"/collections/hue-hospitals/items/{feature_id}", {"f": "html", "lang": "en"}).content.decode()
    assert "poi_type" in text and "Feature" in text


# --- access ---

def test_private_layer_is_invisible_to_anonymous_callers(client, private_sensor_layer):
    slug = private_sensor_layer.slug
    assert slug not in {c["id"] for c in json_of(client.get("/collections"))["collections"]}
    for url in (f"/collections/{slug}", f"/collections/{slug}/items", f"/collections/{slug}/queryables",
                f"/collections/{slug}/items/s01", f"/collections/{slug}.observations"):
        hidden = assert_ogc_error(client.get(url), 404, "NotFound")
        missing = assert_ogc_error(client.get(url.replace(slug, "no-such-layer")), 404, "NotFound")
        assert hidden["description"].replace(slug, "no-such-layer") == missing["description"]


def test_private_layer_is_readable_with_a_planner_token(client, private_sensor_layer, planner_token):
    slug = private_sensor_layer.slug
    ids = {c["id"] for c in json_of(api_get(client, "/collections", planner_token))["collections"]}
    assert {slug, f"{slug}.observations", "hue-fire-hydrants"} <= ids
    assert "geo-events" not in ids  # planners do not read events
    body = json_of(api_get(client, f"/collections/{slug}/items", planner_token))
    assert body["numberMatched"] == 12


def test_a_bad_token_is_a_401_even_on_public_collections(client):
    body = assert_ogc_error(api_get(client, "/collections", "ct_nope_nope"), 401, "NotAuthenticated")
    assert "token" in body["description"]


def test_geo_events_collection_needs_the_read_events_role(client, hue, planner_token, operator_token):
    raise_event(EventDraft(kind="alert", category="flood", geom=Point(107.5786, 16.4679, srid=4326),
                           occurred_at=timezone.now(), severity=4, title="Ngập đường Lê Lợi",
                           payload={"depth_cm": 30, "reporter_phone": "0900000000"}))
    assert_ogc_error(client.get("/collections/geo-events/items"), 404)
    assert_ogc_error(api_get(client, "/collections/geo-events", planner_token), 404)
    body = json_of(api_get(client, "/collections/geo-events/items?filter=category='flood'", operator_token))
    assert body["numberReturned"] >= 1
    event = body["features"][0]
    assert event["properties"]["severity"] == 4 and event["properties"]["payload"] == {"depth_cm": 30}


def test_post_is_not_allowed(client):
    response = client.post("/collections/hue-hospitals/items", data="{}", content_type="application/json")
    assert_ogc_error(response, 405, "MethodNotAllowed")
    assert response["Allow"] == "GET, HEAD"


def test_api_definition_lists_queryables_of_readable_collections_only(client, private_sensor_layer, planner_token):
    paths = json_of(client.get("/api"))["paths"]
    road_params = {p.get("name") for p in paths["/collections/hue-roads/items"]["get"]["parameters"]}
    assert {"lanes", "highway", "name"} <= road_params
    private_path = f"/collections/{private_sensor_layer.slug}/items"
    assert private_path not in paths
    assert private_path in json_of(api_get(client, "/api", planner_token))["paths"]


def test_head_answers_like_get_without_a_body(client):
    response = client.head("/collections/hue-hospitals/items")
    assert response.status_code == 200 and response["Content-Type"] == "application/geo+json"


def test_site_root_sends_a_browser_to_the_map_and_clients_to_the_landing(client):
    browser = client.get("/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert browser.status_code == 302 and browser["Location"] == "/map/"
    assert json_of(client.get("/", HTTP_ACCEPT="application/json"))["links"]
    assert client.get("/?f=html").status_code == 200


def test_api_definition_validates_and_describes_every_layers_endpoint(client):
    from openapi_spec_validator import validate

    import layers.urls

    doc = json_of(client.get("/api"))
    validate(doc)  # raises on any schema error or dangling $ref
    described = {re.sub(r"\{[^}]+\}", "{}", p) for p in doc["paths"]}
    for pattern in layers.urls.urlpatterns:
        if pattern.name in {"tiles-bad-path"}:
            continue  # a catch-all that only explains the right URL shape
        route = re.sub(r"\(\?P<[^>]+>[^)]*\)", "{}", pattern.pattern.regex.pattern)
        route = "/" + route.strip("^$").replace("/?", "").replace("(?:\\.json)?", "")
        assert route.rstrip("/") in {d.rstrip("/") for d in described} | {""}, f"{pattern.name} {route} undocumented"
    post = doc["paths"]["/collections/{collectionId}/polygon"]["post"]
    assert post["requestBody"]["content"]["application/geo+json"]
