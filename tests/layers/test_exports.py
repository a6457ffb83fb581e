# SPDX-License-Identifier: AGPL-3.0-or-later
"""Exports of query results: every format parses back with the same features and the attribution.

GeoJSON with ``json``, GeoPackage with ``pyogrio``, CSV with ``csv``; the
kepler.gl file is checked for self-containment here and rendered offline in
Chromium in ``test_exports_kepler.py``.
"""
from __future__ import annotations

import csv
import io
import json
import re

import pyogrio
import pytest
import shapely

from layers import exports, registry
from layers.collections import clear_extent_cache
from tests.twin.factories import NGO_MON

pytestmark = pytest.mark.django_db

OSM = "OpenStreetMap"
NEAREST = {"lon": NGO_MON[0], "lat": NGO_MON[1], "limit": 5}


@pytest.fixture(autouse=True)
def fresh_registry():
    registry.clear_caches()
    clear_extent_cache()
    yield
    registry.clear_caches()


def get(client, path: str, params: dict) -> bytes:
    response = client.get(path, params)
    assert response.status_code == 200, response.content[:300]
    return response


def reference(client, path: str, params: dict) -> dict:
    """The JSON answer of the same query: the features every export must carry, in order."""
    return json.loads(get(client, path, {**params, "f": "json"}).content)


def read_csv(data: bytes) -> list[dict[str, str]]:
    csv.field_size_limit(50_000_000)  # ward outlines as WKT are long
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM so Excel reads Vietnamese"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def read_gpkg(data: bytes, tmp_path) -> tuple:
    path = tmp_path / "result.gpkg"
    path.write_bytes(data)
    info = pyogrio.read_info(path)
    return pyogrio.read_dataframe(path), info


# --- the formats of one spatial result ------------------------------------------------------------

def test_geojson_export_is_the_json_answer_as_a_download(client):
    response = get(client, "/collections/hue-hospitals/nearest", {**NEAREST, "f": "geojson"})
    assert 'attachment; filename="hue-hospitals-nearest.geojson"' in response["Content-Disposition"]
    exported, answer = json.loads(response.content), reference(client, "/collections/hue-hospitals/nearest", NEAREST)
    assert [f["id"] for f in exported["features"]] == [f["id"] for f in answer["features"]]
    assert [f["properties"]["distance_m"] for f in exported["features"]] == [
        f["properties"]["distance_m"] for f in answer["features"]]
    assert OSM in exported["attribution"] and exported["layer"]["slug"] == "hue-hospitals"


def test_geopackage_export_has_the_same_features_in_order_with_distances_and_attribution(client, tmp_path):
    response = get(client, "/collections/hue-hospitals/nearest", {**NEAREST, "f": "gpkg"})
    assert response["Content-Type"] == "application/geopackage+sqlite3"
    frame, info = read_gpkg(response.content, tmp_path)
    answer = reference(client, "/collections/hue-hospitals/nearest", NEAREST)
    assert list(frame["id"]) == [f["id"] for f in answer["features"]]
    assert list(frame["distance_m"]) == pytest.approx([f["properties"]["distance_m"] for f in answer["features"]])
    assert OSM in info["layer_metadata"]["attribution"] and OSM in info["dataset_metadata"]["attribution"]
    assert str(frame.crs).upper().endswith("4326")


def test_csv_export_has_lon_lat_wkt_properties_and_attribution_on_every_row(client):
    response = get(client, "/collections/hue-hospitals/nearest", {**NEAREST, "f": "csv"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = read_csv(response.content)
    answer = reference(client, "/collections/hue-hospitals/nearest", NEAREST)
    assert [r["id"] for r in rows] == [f["id"] for f in answer["features"]]
    for row, feature in zip(rows, answer["features"]):
        geometry = shapely.from_wkt(row["wkt"])
        assert geometry.equals_exact(shapely.geometry.shape(feature["geometry"]), 1e-7)
        assert (float(row["lon"]), float(row["lat"])) == pytest.approx(geometry.coords[0], abs=2e-7)
        assert float(row["distance_m"]) == pytest.approx(feature["properties"]["distance_m"])
        assert row["name"] == feature["properties"]["name"] and OSM in row["attribution"]


def test_csv_of_polygons_puts_lon_lat_inside_each_polygon_and_keeps_vietnamese(client):
    rows = read_csv(get(client, "/collections/hue-buildings/area/19753", {"f": "csv", "limit": 3000}).content)
    assert len(rows) > 1000
    for row in rows:
        assert shapely.from_wkt(row["wkt"]).covers(shapely.Point(float(row["lon"]), float(row["lat"])))
    assert "Trường Du Tạ" in {r["name"] for r in rows} or any("ạ" in r["name"] for r in rows)


def test_kepler_export_is_one_html_file_with_the_data_and_no_remote_resource(client):
    response = get(client, "/collections/hue-hospitals/nearest", {**NEAREST, "f": "kepler"})
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode("utf-8")
    answer = reference(client, "/collections/hue-hospitals/nearest", NEAREST)
    model = json.loads(re.search(r'<script type="application/json" id="ct-model">(.*?)</script>', html, re.S)[1])
    dataset = next(iter(model["data"].values()))
    assert dataset["format"] == "geojson"
    assert [f["id"] for f in dataset["data"]["features"]] == [f["id"] for f in answer["features"]]
    assert OSM in html and "Vietnamese Provinces" in html  # data and boundary attribution, visible
    # Nothing is loaded from elsewhere: no external script, link, image, CSS import or style URL.
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)\s*=\s*["']?https?:""", html, re.I)
    # Outside the inlined widget bundle (whose strings name URLs it never loads here) and the
    # feature properties (data values such as a hospital's website), no http(s) URL at all.
    shell = re.sub(r"window\.__ctWidgetSource = .*?;\n", "", html, flags=re.S)
    shell = shell.replace(re.search(r'id="ct-model">(.*?)</script>', html, re.S)[1], "")
    assert not re.search(r"https?://", shell), re.findall(r"https?://\S{0,40}", shell)
    assert not re.search(r"@import|\burl\(", shell, re.I)
    config = json.dumps(model["config"])
    assert not re.search(r"https?://", config) and '"glyphs"' not in config and '"symbol"' not in config


def test_kepler_dataset_has_the_shape_keplergl_serializes_a_geojson_dict_to():
    from keplergl.serializers import data_to_json

    geojson = {"type": "FeatureCollection", "features": []}
    assert data_to_json({"result": geojson}, None) == {"result": {"id": "result", "data": geojson,
                                                                 "format": "geojson"}}


# --- exports of OGC items queries ------------------------------------------------------------------

def test_items_export_keeps_bbox_and_filter_and_matches_the_items_answer(client, tmp_path):
    params = {"bbox": "107.55,16.44,107.62,16.48", "filter": "name LIKE '%H%'", "sortby": "name"}
    items = json.loads(get(client, "/collections/hue-hotels/items", {**params, "limit": 1000}).content)
    expected = [f["id"] for f in items["features"]]
    assert 0 < len(expected) < 133
    frame, info = read_gpkg(get(client, "/collections/hue-hotels/export", {**params, "f": "gpkg"}).content, tmp_path)
    rows = read_csv(get(client, "/collections/hue-hotels/export", {**params, "f": "csv"}).content)
    geojson = json.loads(get(client, "/collections/hue-hotels/export", params).content)
    assert list(frame["id"]) == [r["id"] for r in rows] == [f["id"] for f in geojson["features"]] == expected
    assert OSM in info["layer_metadata"]["attribution"] and OSM in geojson["attribution"]


def test_items_export_without_limit_refuses_to_cut_silently(client, monkeypatch):
    monkeypatch.setattr(exports, "MAX_EXPORT_FEATURES", 50)
    response = client.get("/collections/hue-hotels/export", {"f": "csv"})
    assert response.status_code == 400 and "narrow" in json.loads(response.content)["description"]
    rows = read_csv(get(client, "/collections/hue-hotels/export", {"f": "csv", "limit": 20, "offset": 10}).content)
    items = json.loads(get(client, "/collections/hue-hotels/items", {"limit": 20, "offset": 10}).content)
    assert [r["id"] for r in rows] == [f["id"] for f in items["features"]]


def test_a_private_layer_cannot_be_exported_anonymously(client, hue):
    from tests.twin.factories import make_layer

    layer = make_layer(city=hue)
    response = client.get(f"/collections/{layer.slug}/export", {"f": "csv"})
    assert response.status_code == 404 and json.loads(response.content)["code"] == "NotFound"


# --- per ward ------------------------------------------------------------------------------------------------

def test_per_ward_exports_carry_the_counts_of_all_40_wards(client, tmp_path):
    params = {"property": "height_m", "stats": "avg"}
    frame, info = read_gpkg(get(client, "/collections/hue-buildings/per-ward", {**params, "f": "gpkg"}).content,
                            tmp_path)
    rows = read_csv(get(client, "/collections/hue-buildings/per-ward", {**params, "f": "csv"}).content)
    table = json.loads(get(client, "/collections/hue-buildings/per-ward", {**params, "f": "table"}).content)
    counts = {w["code"]: w["count"] for w in table["wards"]}
    assert len(frame) == len(rows) == 40
    assert dict(zip(frame["ward_code"], frame["count"])) == counts
    assert {r["ward_code"]: int(r["count"]) for r in rows} == counts
    assert "OpenStreetMap" in info["layer_metadata"]["attribution"]
    assert "Vietnamese Provinces" in rows[0]["attribution"]


def test_every_export_format_is_offered_as_an_alternate_link(client):
    links = reference(client, "/collections/hue-police/nearest", {"lon": NGO_MON[0], "lat": NGO_MON[1]})["links"]
    offered = {re.search(r"f=(\w+)", link["href"])[1] for link in links if link["rel"] == "alternate"}
    assert offered == {"geojson", "gpkg", "csv", "kepler"}


def test_items_with_a_file_format_download_the_whole_query(client):
    params = {"bbox": "107.55,16.44,107.62,16.48", "sortby": "name"}
    rows = read_csv(get(client, "/collections/hue-hotels/items", {**params, "f": "csv"}).content)
    exported = read_csv(get(client, "/collections/hue-hotels/export", {**params, "f": "csv"}).content)
    page = json.loads(get(client, "/collections/hue-hotels/items", params).content)
    assert [r["id"] for r in rows] == [r["id"] for r in exported]
    assert len(rows) > page["numberReturned"] == 10  # every match, not the first page
    kepler = get(client, "/collections/hue-hotels/items", {**params, "f": "kepler"})
    assert kepler["Content-Type"] == "text/html; charset=utf-8" and "attachment" in kepler["Content-Disposition"]
