# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin export``: GeoJSON and GeoPackage output, attribution, round trips, chunked streaming.

A round trip exports a layer and imports the file into a new layer with
``twin import --create-layer``; the features must come back the same.
"""
from __future__ import annotations

import io
import itertools
import json
import sqlite3
from pathlib import Path

import pyogrio
import pytest
from django.core.management import CommandError, call_command
from shapely.geometry import LineString, Point, Polygon

from twin.io import exporters
from twin.models import Feature, Layer
from twin.services import FeatureRow, LayerSpec, ensure_layer, write_features

pytestmark = pytest.mark.django_db

NGO_MON = (107.5786, 16.4679)
THIEN_MU = (107.5447, 16.4533)
ATTRIBUTION = "© Trung tâm Giám sát, điều hành đô thị thông minh Huế (CC BY 4.0)"
_slugs = itertools.count(1)


def make_layer(city, kind: str, geometry_type: str = "Geometry") -> Layer:
    n = next(_slugs)
    return ensure_layer(LayerSpec(slug=f"test-export-{kind.replace('_', '-')}-{n}", title_vi=f"Lớp xuất {n}",
                                  title_en=f"Export layer {n}", kind=kind, geometry_type=geometry_type,
                                  attribution=ATTRIBUTION, description="Dữ liệu thử"), city=city)


@pytest.fixture
def cameras(hue) -> Layer:
    layer = make_layer(hue, "camera", "Point")
    write_features(layer, [
        FeatureRow("cam-1", Point(*NGO_MON), {"heading_deg": 180, "fov_deg": 60, "range_m": 80,
                                              "analytics": ["crowd", "vehicle_count"], "vendor": "Hikvision"},
                   name="Cổng Ngọ Môn", height_m=6.5),
        FeatureRow("cam-2", Point(107.5790123456789, 16.4681234567891), {"heading_deg": 90.5, "fov_deg": 90,
                                                                         "range_m": 50}, status="offline"),
        FeatureRow("cam-3", Point(*THIEN_MU), {"heading_deg": 0, "fov_deg": 45, "range_m": 120,
                                               "stream_url": "rtsp://10.0.0.3/main"}, name="Thiên Mụ"),
    ])
    return layer


@pytest.fixture
def mixed(hue) -> Layer:
    """A generic layer with nested, mixed-type and clashing properties and several geometry types."""
    layer = make_layer(hue, "generic")
    x, y = NGO_MON
    write_features(layer, [
        FeatureRow("p", Point(x, y), {"n": 1, "f": 1.5, "ok": True, "tags": {"a": [1, 2]}, "mixed": 3,
                                      "status": "ghi đè"}, name="Điểm"),
        FeatureRow("l", LineString([(x, y), (x + 0.001, y)]), {"n": 2, "f": 2, "ok": False, "mixed": "ba"}),
        FeatureRow("a", Polygon([(x, y), (x + 0.001, y), (x, y + 0.001)]), {"note": "vùng"}, height_m=12),
    ])
    return layer


def run(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("export", "--no-progress", *args, stdout=out, stderr=err)
    return out.getvalue()


def run_import(path: Path, slug: str, kind: str) -> Layer:
    call_command("import", str(path), "--layer", slug, "--create-layer", "--kind", kind, "--title-vi", "Nhập lại",
                 "--no-progress", stdout=io.StringIO(), stderr=io.StringIO())
    return Layer.objects.get(slug=slug)


def comparable(layer: Layer) -> dict[str, tuple]:
    return {f.external_id: (f.name, f.status, f.height_m, f.properties, f.geom)
            for f in Feature.objects.filter(layer=layer)}


def assert_same_features(original: Layer, copy: Layer) -> None:
    before, after = comparable(original), comparable(copy)
    assert set(before) == set(after)
    for key, (name, status, height, props, geom) in before.items():
        assert after[key][:4] == (name, status, height, props), key
        assert after[key][4].equals_exact(geom, 1e-7), key  # GeoJSON keeps 7 decimals


# ---------------------------------------------------------------- GeoJSON


def test_geojson_export_is_a_feature_collection_with_ids_attribution_and_layer(cameras, tmp_path):
    path = tmp_path / "cameras.geojson"
    output = run("--layer", cameras.slug, "-o", str(path))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert "3 features written" in output
    assert data["type"] == "FeatureCollection" and data["attribution"] == ATTRIBUTION
    assert data["layer"]["slug"] == cameras.slug and data["layer"]["kind"] == "camera"
    assert data["layer"]["city"] == "hue" and "crs" not in data  # RFC 7946: lon/lat WGS 84, no crs member
    first = data["features"][0]
    assert first["id"] == "cam-1" and first["geometry"] == {"type": "Point", "coordinates": list(NGO_MON)}
    assert first["properties"] == {"name": "Cổng Ngọ Môn", "status": "active", "height_m": 6.5, "last_seen": None,
                                   "heading_deg": 180.0, "fov_deg": 60.0, "range_m": 80.0,
                                   "analytics": ["crowd", "vehicle_count"], "vendor": "Hikvision"}


def test_geojson_coordinates_have_at_most_seven_decimals(cameras, tmp_path):
    path = tmp_path / "c.geojson"
    run("--layer", cameras.slug, "-o", str(path))
    coords = next(f for f in json.loads(path.read_text())["features"] if f["id"] == "cam-2")["geometry"]["coordinates"]
    assert coords == [107.5790123, 16.4681235]


def test_geojson_round_trip_gives_the_same_features(cameras, tmp_path):
    path = tmp_path / "cameras.geojson"
    run("--layer", cameras.slug, "-o", str(path))
    assert_same_features(cameras, run_import(path, "test-export-copy-geojson", "camera"))


def test_geojson_round_trip_keeps_nested_and_clashing_properties(mixed, tmp_path):
    path = tmp_path / "mixed.geojson"
    run("--layer", mixed.slug, "-o", str(path))
    props = {f["id"]: f["properties"] for f in json.loads(path.read_text())["features"]}
    assert props["p"]["prop_status"] == "ghi đè" and props["p"]["status"] == "active"
    assert_same_features(mixed, run_import(path, "test-export-copy-mixed", "generic"))


def test_export_to_stdout_writes_geojson(cameras):
    data = json.loads(run("--layer", cameras.slug, "-o", "-"))
    assert [f["id"] for f in data["features"]] == ["cam-1", "cam-2", "cam-3"]


def test_export_filters_by_bbox_and_status(cameras):
    west, south = NGO_MON[0] - 0.001, NGO_MON[1] - 0.001
    inside = json.loads(run("--layer", cameras.slug, "-o", "-", "--bbox", f"{west},{south},107.6,16.5"))
    assert [f["id"] for f in inside["features"]] == ["cam-1", "cam-2"]
    offline = json.loads(run("--layer", cameras.slug, "-o", "-", "--where-status", "offline"))
    assert [f["id"] for f in offline["features"]] == ["cam-2"]


# ------------------------------------------------------------- GeoPackage


def test_geopackage_carries_attribution_in_metadata_and_description(cameras, tmp_path):
    path = tmp_path / "cameras.gpkg"
    run("--layer", cameras.slug, "-o", str(path))
    info = pyogrio.read_info(path)
    assert info["layer_name"] == cameras.slug and info["features"] == 3 and info["crs"] == "EPSG:4326"
    assert info["dataset_metadata"]["attribution"] == ATTRIBUTION
    assert info["layer_metadata"]["attribution"] == ATTRIBUTION
    with sqlite3.connect(path) as db:
        identifier, description = db.execute("SELECT identifier, description FROM gpkg_contents").fetchone()
    assert identifier == cameras.title_vi and ATTRIBUTION in description


def test_geopackage_round_trip_gives_the_same_features(cameras, tmp_path):
    path = tmp_path / "cameras.gpkg"
    run("--layer", cameras.slug, "--format", "gpkg", "-o", str(path))
    assert_same_features(cameras, run_import(path, "test-export-copy-gpkg", "camera"))


def test_geopackage_round_trip_keeps_types_of_flattened_properties(mixed, tmp_path):
    path = tmp_path / "mixed.gpkg"
    run("--layer", mixed.slug, "-o", str(path))
    info = pyogrio.read_info(path)
    assert dict(zip(info["fields"], info["ogr_types"], strict=True))["n"] == "OFTInteger64"
    assert json.loads(info["layer_metadata"]["citytwin_json_columns"]) == ["mixed", "tags"]
    assert info["geometry_type"] == "Unknown"  # points, lines and polygons together
    assert_same_features(mixed, run_import(path, "test-export-copy-mixed-gpkg", "generic"))


def test_export_streams_in_chunks_without_losing_features(hue, tmp_path, monkeypatch):
    monkeypatch.setattr(exporters, "FETCH_CHUNK", 2)
    monkeypatch.setattr(exporters, "GPKG_CHUNK", 3)
    layer = make_layer(hue, "generic", "Point")
    write_features(layer, [FeatureRow(f"f{i:02d}", Point(NGO_MON[0] + i * 1e-4, NGO_MON[1]), {"i": i})
                           for i in range(8)])
    run("--layer", layer.slug, "-o", str(tmp_path / "all.gpkg"))
    run("--layer", layer.slug, "-o", str(tmp_path / "all.geojson"))
    assert pyogrio.read_dataframe(tmp_path / "all.gpkg")["i"].tolist() == list(range(8))
    assert len(json.loads((tmp_path / "all.geojson").read_text())["features"]) == 8


def test_empty_layer_exports_an_empty_file(hue, tmp_path):
    layer = make_layer(hue, "building", "Polygon")
    run("--layer", layer.slug, "-o", str(tmp_path / "empty.gpkg"))
    run("--layer", layer.slug, "-o", str(tmp_path / "empty.geojson"))
    assert pyogrio.read_info(tmp_path / "empty.gpkg")["features"] == 0
    assert json.loads((tmp_path / "empty.geojson").read_text())["features"] == []


# ----------------------------------------------------------------- errors


def test_export_of_an_unknown_layer_fails(hue):
    with pytest.raises(CommandError, match="no layer 'test-export-missing'"):
        run("--layer", "test-export-missing")


def test_geopackage_cannot_go_to_stdout(cameras):
    with pytest.raises(CommandError, match="only GeoJSON can be written to standard output"):
        run("--layer", cameras.slug, "-o", "-", "--format", "gpkg")


def test_unknown_extension_needs_format(cameras, tmp_path):
    with pytest.raises(CommandError, match="cannot tell the format"):
        run("--layer", cameras.slug, "-o", str(tmp_path / "cameras.kml"))
