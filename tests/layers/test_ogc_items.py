# SPDX-License-Identifier: AGPL-3.0-or-later
"""``/collections/{id}/items``: bbox, bbox-crs, datetime, paging, counts, filters, sorting, properties."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from pyproj import Transformer

from tests.layers.ogc_fixtures import *  # noqa: F403
from tests.layers.ogc_fixtures import api_get, json_of, sql_count
from twin.models import Feature, Layer
from twin.services import ObservationRow, record_observations

pytestmark = pytest.mark.django_db

IMPERIAL_CITY = (107.570, 16.460, 107.590, 16.480)  # lon/lat box around the citadel


def items(client, slug: str, token: str | None = None, **params) -> dict:
    response = api_get(client, f"/collections/{slug}/items?" + "&".join(f"{k}={v}" for k, v in params.items()),
                       token)
    assert response.status_code == 200, response.content[:400]
    assert response["Content-Type"] == "application/geo+json"
    return json_of(response)


def buildings_in(box: tuple[float, float, float, float]) -> int:
    return sql_count("SELECT count(*) FROM twin_feature f JOIN twin_layer l ON l.id = f.layer_id "
                     "WHERE l.slug = 'hue-buildings' AND ST_Intersects(f.geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
                     list(box))


def follow(client, url: str, token: str | None = None) -> list[dict]:
    """Every feature, following ``next`` links to the end."""
    features = []
    while url:
        body = json_of(api_get(client, url, token))
        features += body["features"]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    return features


def test_items_are_a_geojson_feature_collection_with_counts_and_links(client):
    body = items(client, "hue-hospitals")
    assert body["type"] == "FeatureCollection" and body["numberReturned"] == len(body["features"]) == 10
    assert body["numberMatched"] == Layer.objects.get(slug="hue-hospitals").features.count()
    feature = body["features"][0]
    assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Point"
    assert {"name", "status", "height_m", "last_seen", "poi_type"} <= set(feature["properties"])
    assert {link["rel"] for link in body["links"]} >= {"self", "alternate", "next", "collection"}


def test_bbox_returns_exactly_the_features_sql_finds_in_the_box(client):
    box = IMPERIAL_CITY
    body = items(client, "hue-buildings", bbox=",".join(map(str, box)), limit=10000)
    assert body["numberReturned"] == body["numberMatched"] == buildings_in(box) > 100


def test_bbox_crs_epsg_4326_takes_latitude_first(client):
    minx, miny, maxx, maxy = IMPERIAL_CITY
    lat_lon = f"{miny},{minx},{maxy},{maxx}"
    body = items(client, "hue-buildings", bbox=lat_lon, limit=1,
                 **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"})
    assert body["numberMatched"] == buildings_in(IMPERIAL_CITY)


def test_bbox_crs_web_mercator_is_transformed_not_the_column(client):
    to_3857 = Transformer.from_crs("OGC:CRS84", "EPSG:3857", always_xy=True)
    x1, y1 = to_3857.transform(IMPERIAL_CITY[0], IMPERIAL_CITY[1])
    x2, y2 = to_3857.transform(IMPERIAL_CITY[2], IMPERIAL_CITY[3])
    body = items(client, "hue-buildings", bbox=f"{x1},{y1},{x2},{y2}", limit=1,
                 **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/3857"})
    assert body["numberMatched"] == buildings_in(IMPERIAL_CITY)


def test_six_number_bbox_ignores_heights(client):
    minx, miny, maxx, maxy = IMPERIAL_CITY
    body = items(client, "hue-buildings", bbox=f"{minx},{miny},-10,{maxx},{maxy},500", limit=1)
    assert body["numberMatched"] == buildings_in(IMPERIAL_CITY)


def test_limit_and_paging_reach_every_feature_once(client):
    expected = Layer.objects.get(slug="hue-hotels").features.count()
    features = follow(client, "/collections/hue-hotels/items?limit=17&filter=status%3D'active'")
    assert len(features) == expected == len({f["id"] for f in features})


def test_paging_links_keep_every_other_parameter(client):
    body = items(client, "hue-buildings", bbox=",".join(map(str, IMPERIAL_CITY)), limit=5, sortby="-height_m",
                 offset=10)
    links = {link["rel"]: parse_qs(urlsplit(link["href"]).query) for link in body["links"]}
    assert links["next"]["offset"] == ["15"] and links["prev"]["offset"] == ["5"]
    for rel in ("next", "prev"):
        assert links[rel]["bbox"] == [",".join(map(str, IMPERIAL_CITY))] and links[rel]["sortby"] == ["-height_m"]
        assert links[rel]["limit"] == ["5"]


def test_number_matched_is_exact_when_the_page_holds_everything_and_absent_past_the_cap(client, monkeypatch):
    from layers.providers import postgis

    assert items(client, "hue-police", limit=100)["numberMatched"] == 5
    assert items(client, "hue-buildings", limit=10)["numberMatched"] == buildings_in((-180, -90, 180, 90))
    monkeypatch.setattr(postgis, "COUNT_CAP", 1000)
    body = items(client, "hue-roads", limit=10)
    assert "numberMatched" not in body and body["numberReturned"] == 10


def test_a_page_past_the_end_is_empty_with_no_next_link(client):
    body = items(client, "hue-police", offset=50)
    assert body["numberReturned"] == 0 and body["features"] == [] and body["numberMatched"] == 5
    assert "next" not in {link["rel"] for link in body["links"]}


def test_property_filters_compare_typed_values(client):
    body = items(client, "hue-hospitals", poi_type="hospital", limit=100)
    expected = Feature.objects.filter(layer__slug="hue-hospitals", properties__poi_type="hospital").count()
    assert body["numberMatched"] == expected > 0
    assert all(f["properties"]["poi_type"] == "hospital" for f in body["features"])
    roads = items(client, "hue-roads", lanes=2, limit=1)
    assert roads["numberMatched"] == Feature.objects.filter(layer__slug="hue-roads", properties__lanes=2).count()


def test_sortby_ascending_and_descending(client):
    tallest = items(client, "hue-buildings", sortby="-height_m", limit=5)["features"]
    heights = [f["properties"]["height_m"] for f in tallest]
    assert heights == sorted(heights, reverse=True) and heights[0] == max(
        Feature.objects.filter(layer__slug="hue-buildings").values_list("height_m", flat=True))
    names = [f["properties"]["name"] for f in items(client, "hue-police", sortby="%2Bname", limit=10)["features"]]
    assert names == sorted(names)
    assert [f["properties"]["name"] for f in items(client, "hue-police", sortby="-name")["features"]] == names[::-1]


def test_properties_parameter_selects_what_each_feature_carries(client):
    features = items(client, "hue-roads", properties="name,lanes", limit=3)["features"]
    assert all(set(f["properties"]) == {"name", "lanes"} for f in features)
    assert all(f["geometry"]["type"] == "LineString" for f in features)


def test_datetime_instant_and_intervals_filter_the_temporal_property(client, report_layer):
    slug = report_layer.slug
    assert items(client, slug, datetime="2025-07-03T08:00:00Z")["numberMatched"] == 1
    assert items(client, slug, datetime="2025-07-03")["numberMatched"] == 1  # the whole day
    assert items(client, slug, datetime="2025-07-03T00:00:00Z/2025-07-05T23:59:59Z")["numberMatched"] == 3
    assert items(client, slug, datetime="../2025-07-02T08:00:00Z")["numberMatched"] == 2
    assert items(client, slug, datetime="2025-07-08T00:00:00%2B07:00/..")["numberMatched"] == 3


def test_single_feature_by_external_id_with_links(client):
    first = items(client, "hue-hospitals", limit=1)["features"][0]
    response = client.get(f"/collections/hue-hospitals/items/{first['id']}")
    assert response.status_code == 200 and response["Content-Type"] == "application/geo+json"
    body = json_of(response)
    assert body["id"] == first["id"] and body["geometry"] == first["geometry"]
    assert {link["rel"] for link in body["links"]} >= {"self", "alternate", "collection"}


def test_observation_collection_serves_the_time_series_of_a_layer(client, private_sensor_layer, planner_token):
    sensors = dict(private_sensor_layer.features.values_list("external_id", "id"))
    start = datetime(2025, 8, 1, tzinfo=UTC)
    record_observations(ObservationRow(sensors[f"s{i:02d}"], start + timedelta(hours=h), {"level_cm": 10 * h + i})
                        for i in range(3) for h in range(4))
    slug = f"{private_sensor_layer.slug}.observations"
    body = items(client, slug, planner_token, feature="s01", limit=100)
    assert body["numberMatched"] == 4
    assert [f["properties"]["level_cm"] for f in body["features"]] == [1, 11, 21, 31]
    windowed = items(client, slug, planner_token, datetime="2025-08-01T01:00:00Z/2025-08-01T02:00:00Z")
    assert windowed["numberMatched"] == 6
    one = body["features"][0]
    assert json_of(api_get(client, f"/collections/{slug}/items/{one['id']}", planner_token))["properties"][
        "feature"] == "s01"
