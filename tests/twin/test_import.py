# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin import``: every format, VN-2000 input, and every kind of bad input.

Real PostGIS and the real Huế city (conftest loads it). Input files are
made in ``tmp_path`` with geopandas, pyogrio, json and csv. Every failure
test checks that the layer's features are exactly as before.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import math
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from pyproj import Geod, Transformer
from shapely.geometry import Point, Polygon, box

from twin.models import Feature, Layer
from twin.services import FeatureRow, LayerSpec, ensure_layer, write_features

pytestmark = pytest.mark.django_db

NGO_MON = (107.5786, 16.4679)  # the Ngọ Môn gate of the Imperial City, Huế (WGS 84)
THIEN_MU = (107.5447, 16.4533)  # Thiên Mụ pagoda
HA_NOI = (105.8542, 21.0285)  # Hoàn Kiếm lake: far outside Huế
GEOD = Geod(ellps="WGS84")
_slugs = itertools.count(1)


# ---------------------------------------------------------------- helpers


def make_layer(city, kind: str = "generic", geometry_type: str = "Geometry") -> Layer:
    n = next(_slugs)
    return ensure_layer(LayerSpec(slug=f"test-io-{kind.replace('_', '-')}-{n}", title_vi=f"Lớp nhập {n}",
                                  kind=kind, geometry_type=geometry_type), city=city)


def run_import(path: Path, layer: str, *args: str) -> str:
    out = io.StringIO()
    call_command("import", str(path), "--layer", layer, "--no-progress", *args, stdout=out, stderr=out)
    return out.getvalue()


def features(layer: Layer) -> dict[str, Feature]:
    return {f.external_id: f for f in Feature.objects.filter(layer=layer)}


def snapshot(layer: Layer) -> list[tuple]:
    return sorted(Feature.objects.filter(layer=layer).values_list("external_id", "name", "properties", "geom"),
                  key=lambda r: r[0])


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    return GEOD.inv(a[0], a[1], b[0], b[1])[2]


def write_geojson(path: Path, feats: list[dict], crs: str | None = None) -> Path:
    collection = {"type": "FeatureCollection", "features": feats}
    if crs:  # the 2008 GeoJSON "crs" member; RFC 7946 files have none
        collection["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    return path


def geojson_feature(fid, geom, **props) -> dict:
    return {"type": "Feature", "id": fid, "geometry": geom.__geo_interface__, "properties": props}


def zip_shapefile(frame: gpd.GeoDataFrame, folder: Path, name: str, *, keep_prj: bool = True) -> Path:
    shp_dir = folder / f"{name}_shp"
    shp_dir.mkdir()
    frame.to_file(shp_dir / f"{name}.shp", engine="pyogrio")
    archive = folder / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in shp_dir.iterdir():
            if part.suffix == ".prj" and not keep_prj:
                continue
            zf.write(part, part.name)
    return archive


def write_csv(path: Path, header: list[str], rows: list[list], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def seeded(hue) -> Layer:
    """A generic layer already holding one feature, to prove failures change nothing."""
    layer = make_layer(hue)
    write_features(layer, [FeatureRow("keep", Point(*THIEN_MU), {"note": "before"}, name="Chùa Thiên Mụ")])
    return layer


def assert_rejected(path: Path, layer: Layer, *args: str) -> str:
    """Run an import that must fail; return its message after checking nothing changed."""
    before = snapshot(layer)
    with pytest.raises(CommandError) as excinfo:
        run_import(path, layer.slug, *args)
    assert snapshot(layer) == before
    return str(excinfo.value)


# ------------------------------------------------- VN-2000 reference maths
# An implementation of the Decision 05/2007/QĐ-BTNMT seven-parameter
# transformation independent of PROJ, applied as EPSG:6960 does (coordinate
# frame rotation, VN-2000 → WGS 84). We invert it to make VN-2000 inputs from
# known WGS 84 positions; the import must bring them back.
A, F = 6378137.0, 1 / 298.257223563  # VN-2000 uses the WGS 84 ellipsoid
E2 = F * (2 - F)
SHIFT = np.array([-191.90441429, -39.30318279, -111.45032835])
RX, RY, RZ = np.radians(np.array([-0.00928836, 0.01975479, -0.00427372]) / 3600)
SCALE = 1 + 0.252906278e-6
ROTATION = np.array([[1, RZ, -RY], [-RZ, 1, RX], [RY, -RX, 1]])  # coordinate frame convention


def _to_ecef(lon: float, lat: float) -> np.ndarray:
    lam, phi = math.radians(lon), math.radians(lat)
    n = A / math.sqrt(1 - E2 * math.sin(phi) ** 2)
    return np.array([n * math.cos(phi) * math.cos(lam), n * math.cos(phi) * math.sin(lam),
                     n * (1 - E2) * math.sin(phi)])


def _from_ecef(xyz: np.ndarray) -> tuple[float, float]:
    x, y, z = xyz
    p, lon = math.hypot(x, y), math.atan2(y, x)
    lat = math.atan2(z, p * (1 - E2))
    for _ in range(10):
        n = A / math.sqrt(1 - E2 * math.sin(lat) ** 2)
        h = p / math.cos(lat) - n
        lat = math.atan2(z, p * (1 - E2 * n / (n + h)))
    return math.degrees(lon), math.degrees(lat)


def wgs84_to_vn2000(lon: float, lat: float) -> tuple[float, float]:
    """Invert X_wgs = T + (1 + s) R X_vn for a WGS 84 position."""
    return _from_ecef(np.linalg.solve(SCALE * ROTATION, _to_ecef(lon, lat) - SHIFT))


def test_reference_maths_moves_ngo_mon_by_the_vn2000_datum_offset():
    vn = wgs84_to_vn2000(*NGO_MON)
    assert 200 < distance_m(vn, NGO_MON) < 250  # the offset a "ballpark" transform would miss


# ----------------------------------------------------------- each format


@pytest.fixture
def geojson_file(tmp_path) -> Path:
    return write_geojson(tmp_path / "di_tich.geojson", [
        geojson_feature("ngo-mon", Point(*NGO_MON), name="Ngọ Môn", height_m=17, loai="cổng", nam=1833,
                        tags={"unesco": True}),
        geojson_feature("thien-mu", Point(*THIEN_MU), name="Chùa Thiên Mụ", loai="chùa", nam=1601),
    ])


def test_geojson_is_imported_with_names_heights_and_properties(hue, geojson_file):
    layer = make_layer(hue)
    output = run_import(geojson_file, layer.slug)
    got = features(layer)
    assert set(got) == {"ngo-mon", "thien-mu"}
    assert got["ngo-mon"].name == "Ngọ Môn" and got["ngo-mon"].height_m == 17
    assert got["ngo-mon"].properties == {"loai": "cổng", "nam": 1833, "tags": {"unesco": True}}
    assert got["thien-mu"].geom.coords == pytest.approx(THIEN_MU)
    assert "2 inserted" in output and "EPSG:4326" in output


def test_geopackage_import_reads_the_layer_named_by_source_layer(hue, tmp_path):
    path = tmp_path / "hue.gpkg"
    gpd.GeoDataFrame({"code": ["A1", "A2"], "ten": ["Cửa Hiển Nhơn", "Cửa Chương Đức"], "so_tang": [2, 2]},
                     geometry=[box(107.576, 16.468, 107.577, 16.469), box(107.574, 16.466, 107.575, 16.467)],
                     crs="EPSG:4326").to_file(path, layer="cong", engine="pyogrio")
    gpd.GeoDataFrame({"code": ["X"]}, geometry=[Point(*NGO_MON)], crs="EPSG:4326").to_file(
        path, layer="other", engine="pyogrio")
    layer = make_layer(hue, "building", "Polygon")
    run_import(path, layer.slug, "--source-layer", "cong")
    got = features(layer)
    assert set(got) == {"A1", "A2"}  # ids from "code", names from "ten"
    assert got["A1"].name == "Cửa Hiển Nhơn"
    assert got["A1"].properties["so_tang"] == 2 and isinstance(got["A1"].properties["so_tang"], int)


def test_geopackage_with_several_layers_needs_source_layer(seeded, tmp_path):
    path = tmp_path / "two.gpkg"
    for name in ("one", "two"):
        gpd.GeoDataFrame({"id": [name]}, geometry=[Point(*NGO_MON)], crs="EPSG:4326").to_file(
            path, layer=name, engine="pyogrio")
    message = assert_rejected(path, seeded)
    assert "2 layers (one, two)" in message and "--source-layer" in message


def test_zipped_shapefile_with_prj_is_reprojected_and_imported(hue, tmp_path):
    frame = gpd.GeoDataFrame({"id": [1, 2], "name": ["Ngọ Môn", "Thiên Mụ"]},
                             geometry=[Point(*NGO_MON), Point(*THIEN_MU)], crs="EPSG:4326").to_crs("EPSG:32648")
    layer = make_layer(hue, "poi")
    frame["poi_type"] = "other"
    run_import(zip_shapefile(frame, tmp_path, "diem"), layer.slug)
    got = features(layer)
    assert set(got) == {"1", "2"}  # numeric ids become text ids
    assert distance_m(got["1"].geom.coords, NGO_MON) < 0.01


def test_plain_shapefile_is_imported_with_its_sidecar_files(hue, tmp_path):
    frame = gpd.GeoDataFrame({"osm_id": [42]}, geometry=[Point(*NGO_MON)], crs="EPSG:4326").to_crs("EPSG:9214")
    frame.to_file(tmp_path / "diem.shp", engine="pyogrio")
    layer = make_layer(hue)
    run_import(tmp_path / "diem.shp", layer.slug)
    assert distance_m(features(layer)["42"].geom.coords, NGO_MON) < 0.01


def test_zip_with_two_shapefiles_needs_source_layer(seeded, tmp_path):
    frame = gpd.GeoDataFrame({"id": ["a"]}, geometry=[Point(*NGO_MON)], crs="EPSG:4326")
    first, second = zip_shapefile(frame, tmp_path, "mot"), zip_shapefile(frame, tmp_path, "hai")
    both = tmp_path / "both.zip"
    with zipfile.ZipFile(both, "w") as out:
        for archive, folder in ((first, "mot"), (second, "hai")):
            with zipfile.ZipFile(archive) as src:
                for name in src.namelist():
                    out.writestr(f"{folder}/{name}", src.read(name))  # shapefiles in sub-folders
    assert "--source-layer" in assert_rejected(both, seeded)
    run_import(both, seeded.slug, "--source-layer", "hai")
    assert "a" in features(seeded)


def test_csv_with_lon_lat_columns_is_imported(hue, tmp_path):
    path = write_csv(tmp_path / "camera.csv",
                     ["ID", "Ten", "Longitude", "Latitude", "heading_deg", "fov_deg", "range_m", "analytics"],
                     [["cam-1", "Cổng Ngọ Môn", NGO_MON[0], NGO_MON[1], 180, 60, 80, '["crowd"]'],
                      ["cam-2", "Thiên Mụ", THIEN_MU[0], THIEN_MU[1], 90, 90, 50, ""]], delimiter=";")
    layer = make_layer(hue, "camera", "Point")
    run_import(path, layer.slug)
    got = features(layer)
    assert got["cam-1"].name == "Cổng Ngọ Môn"
    assert got["cam-1"].geom.coords == pytest.approx(NGO_MON)
    assert got["cam-1"].properties == {"heading_deg": 180.0, "fov_deg": 60.0, "range_m": 80.0,
                                       "analytics": ["crowd"]}


def test_csv_coordinate_columns_can_be_named_and_projected(hue, tmp_path):
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32648", always_xy=True)
    east, north = to_utm.transform(*NGO_MON)
    path = write_csv(tmp_path / "utm.csv", ["code", "dong", "bac"], [["p1", east, north]])
    layer = make_layer(hue)
    run_import(path, layer.slug, "--lon-col", "dong", "--lat-col", "bac", "--crs", "EPSG:32648")
    assert distance_m(features(layer)["p1"].geom.coords, NGO_MON) < 0.01


# ------------------------------------------------------------- VN-2000


def _vn2000_file(epsg: int, tmp_path: Path) -> Path:
    """Ngọ Môn and Thiên Mụ in a VN-2000 CRS, in a different format per CRS."""
    points = [wgs84_to_vn2000(*NGO_MON), wgs84_to_vn2000(*THIEN_MU)]
    if epsg != 4756:  # projecting within VN-2000 is a pure conversion, no datum change
        project = Transformer.from_crs("EPSG:4756", f"EPSG:{epsg}", always_xy=True)
        assert "VN-2000 to WGS 84" not in project.description
        points = [project.transform(*p) for p in points]
    frame = gpd.GeoDataFrame({"id": ["ngo-mon", "thien-mu"]}, geometry=[Point(p) for p in points],
                             crs=f"EPSG:{epsg}")
    if epsg == 3405:
        return zip_shapefile(frame, tmp_path, "vn2000_utm48")  # GDAL writes an ESRI .prj
    if epsg == 9214:
        return write_geojson(tmp_path / "vn2000_tm3.geojson",
                             [geojson_feature(i, g) for i, g in zip(frame["id"], frame.geometry, strict=True)],
                             crs=f"urn:ogc:def:crs:EPSG::{epsg}")
    frame.to_file(tmp_path / "vn2000.gpkg", engine="pyogrio")
    return tmp_path / "vn2000.gpkg"


@pytest.mark.parametrize("epsg", [4756, 3405, 9214], ids=["geographic-4756", "utm48n-3405", "tm3-107-9214"])
def test_vn2000_file_lands_within_5_cm_of_the_wgs84_positions(hue, tmp_path, epsg):
    layer = make_layer(hue)
    output = run_import(_vn2000_file(epsg, tmp_path), layer.slug)
    assert "VN-2000 to WGS 84 (2)" in output  # EPSG:6960, the Decision 05/2007 parameters
    got = features(layer)
    assert distance_m(got["ngo-mon"].geom.coords, NGO_MON) < 0.05
    assert distance_m(got["thien-mu"].geom.coords, THIEN_MU) < 0.05


# ------------------------------------------------------ updates, layers


def test_reimport_updates_instead_of_duplicating(hue, geojson_file, tmp_path):
    layer = make_layer(hue)
    run_import(geojson_file, layer.slug)
    changed = write_geojson(tmp_path / "changed.geojson", [
        geojson_feature("ngo-mon", Point(*NGO_MON), name="Ngọ Môn (trùng tu)", loai="cổng", nam=1833),
        geojson_feature("thien-mu", Point(*THIEN_MU), name="Chùa Thiên Mụ", loai="chùa", nam=1601),
    ])
    output = run_import(changed, layer.slug)
    assert Feature.objects.filter(layer=layer).count() == 2
    assert features(layer)["ngo-mon"].name == "Ngọ Môn (trùng tu)"
    assert "0 inserted, 1 updated" in output


def test_create_layer_makes_the_layer_with_the_files_geometry_type(hue, geojson_file):
    output = run_import(geojson_file, "test-io-created", "--create-layer", "--kind", "tourist_site",
                        "--title-vi", "Di tích", "--title-en", "Monuments", "--attribution", "© Sở Du lịch Huế",
                        "--public")
    layer = Layer.objects.get(slug="test-io-created")
    assert (layer.kind, layer.geometry_type, layer.city, layer.is_public) == ("tourist_site", "Point", hue, True)
    assert layer.attribution == "© Sở Du lịch Huế"
    assert "layer test-io-created created" in output and len(features(layer)) == 2


def test_dry_run_validates_and_writes_nothing(hue, geojson_file):
    output = run_import(geojson_file, "test-io-dry", "--create-layer", "--kind", "generic", "--title-vi", "Thử",
                        "--dry-run")
    assert "dry run, nothing written" in output and "2 inserted" in output
    assert not Layer.objects.filter(slug="test-io-dry").exists()


def test_file_without_id_column_uses_row_numbers_and_warns(hue, tmp_path):
    path = write_csv(tmp_path / "no_id.csv", ["lon", "lat", "ghi_chu"], [[*NGO_MON, "a"], [*THIEN_MU, "b"]])
    layer = make_layer(hue)
    output = run_import(path, layer.slug)
    assert "no id column" in output and "--id-field" in output
    assert set(features(layer)) == {"1", "2"}


# ------------------------------------------------------------ bad input


def _bowtie() -> Polygon:
    x, y = NGO_MON
    return Polygon([(x, y), (x + 0.001, y + 0.001), (x + 0.001, y), (x, y + 0.001), (x, y)])


def test_self_intersecting_polygon_is_repaired_with_st_makevalid_and_reported(hue, tmp_path):
    path = write_geojson(tmp_path / "bowtie.geojson", [geojson_feature("no", _bowtie(), name="Nơ")])
    layer = make_layer(hue, "generic", "Polygon")
    output = run_import(path, layer.slug)
    assert "repaired with ST_MakeValid" in output and "row 1 (id 'no'): Self-intersection" in output
    repaired = features(layer)["no"].geom
    assert repaired.valid and repaired.geom_type == "MultiPolygon"


def test_self_intersecting_polygon_is_rejected_with_on_invalid_reject(seeded, tmp_path):
    path = write_geojson(tmp_path / "bowtie.geojson", [geojson_feature("no", _bowtie())])
    message = assert_rejected(path, seeded, "--on-invalid", "reject")
    assert "row 1 (id 'no'): invalid geometry (Self-intersection" in message and "nothing was written" in message


def test_point_outside_the_city_extent_is_rejected_naming_the_row(seeded, tmp_path):
    path = write_geojson(tmp_path / "mixed.geojson", [
        geojson_feature("ngo-mon", Point(*NGO_MON)), geojson_feature("ho-guom", Point(*HA_NOI)),
    ])
    message = assert_rejected(path, seeded)
    assert "row 2 (id 'ho-guom'): lies outside the extent of" in message
    assert "ngo-mon" not in features(seeded)


def test_shapefile_without_prj_is_rejected_as_unknown_crs(seeded, tmp_path):
    frame = gpd.GeoDataFrame({"id": ["a"]}, geometry=[Point(*NGO_MON)], crs="EPSG:4326")
    archive = zip_shapefile(frame, tmp_path, "khong_prj", keep_prj=False)
    message = assert_rejected(archive, seeded)
    assert "unknown CRS" in message and "--crs" in message
    run_import(archive, seeded.slug, "--crs", "EPSG:4326")  # supplying the CRS makes it importable
    assert "a" in features(seeded)


@pytest.mark.parametrize("bogus", ["EPSG:999999", "not-a-crs"])
def test_bogus_crs_option_is_rejected(seeded, geojson_file, bogus):
    message = assert_rejected(geojson_file, seeded, "--crs", bogus)
    assert f"unknown CRS {bogus!r}" in message


@pytest.mark.parametrize("crs", ["EPSG:4147", "+proj=tmerc +lon_0=107 +k=0.9999 +x_0=500000 +ellps=WGS84"],
                         ids=["hanoi-1972", "tm3-without-datum"])
def test_crs_without_a_datum_transformation_is_rejected_not_ballparked(seeded, geojson_file, crs):
    message = assert_rejected(geojson_file, seeded, "--crs", crs)
    assert "no known datum transformation to WGS 84" in message and "EPSG:9214" in message


def test_missing_and_unreadable_geometries_are_rejected_naming_the_rows(seeded, tmp_path):
    path = tmp_path / "broken.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "null"}, "geometry": None},
        {"type": "Feature", "properties": {"id": "open"}, "geometry": {  # ring not closed
            "type": "Polygon", "coordinates": [[[107.57, 16.46], [107.58, 16.46], [107.58, 16.47]]]}},
    ]}))
    message = assert_rejected(path, seeded)
    assert "row 1 (id 'null'): no geometry" in message
    assert "row 2 (id 'open'): the geometry cannot be read" in message


def test_camera_with_heading_400_is_rejected_naming_the_row(hue, tmp_path):
    layer = make_layer(hue, "camera", "Point")
    write_features(layer, [FeatureRow("cam-0", Point(*THIEN_MU), {"heading_deg": 0, "fov_deg": 60, "range_m": 50})])
    path = write_geojson(tmp_path / "cameras.geojson", [
        geojson_feature("cam-1", Point(*NGO_MON), heading_deg=90, fov_deg=60, range_m=80),
        geojson_feature("cam-2", Point(*NGO_MON), heading_deg=400, fov_deg=60, range_m=80),
    ])
    message = assert_rejected(path, layer)
    assert "row 2 (id 'cam-2'): invalid camera properties: heading_deg" in message
    assert "cam-1" not in message


def test_csv_with_non_numeric_or_missing_coordinates_is_rejected_naming_the_row(seeded, tmp_path):
    path = write_csv(tmp_path / "bad.csv", ["id", "lon", "lat"],
                     [["ok", *NGO_MON], ["chu", NGO_MON[0], "mười sáu"], ["trong", "", NGO_MON[1]]])
    message = assert_rejected(path, seeded)
    assert "row 2 (id 'chu'): lat 'mười sáu' is not a number" in message
    assert "row 3 (id 'trong'): no value in 'lon'" in message


def test_coordinates_the_crs_cannot_transform_are_rejected_naming_the_row(seeded, tmp_path):
    path = write_csv(tmp_path / "utm.csv", ["id", "x", "y"], [["far", 1e30, 1e30]])
    message = assert_rejected(path, seeded, "--crs", "EPSG:32648")
    assert "row 1 (id 'far'): coordinates cannot be transformed from EPSG:32648" in message


def test_csv_without_coordinate_columns_is_rejected(seeded, tmp_path):
    path = write_csv(tmp_path / "nocoords.csv", ["id", "dia_chi"], [["a", "23 Lê Lợi"]])
    assert "no longitude column found" in assert_rejected(path, seeded)


@override_settings(IMPORT_MAX_BYTES=100)
def test_oversized_file_is_rejected_before_reading_with_the_limit(seeded, geojson_file):
    message = assert_rejected(geojson_file, seeded)
    assert "over the import limit of 100 bytes" in message


def test_failed_import_with_create_layer_leaves_no_layer(hue, tmp_path):
    path = write_geojson(tmp_path / "outside.geojson", [geojson_feature("x", Point(*HA_NOI))])
    with pytest.raises(CommandError, match="outside the extent"):
        run_import(path, "test-io-never", "--create-layer", "--kind", "generic", "--title-vi", "Không")
    assert not Layer.objects.filter(slug="test-io-never").exists()


def test_unknown_layer_without_create_layer_is_rejected(hue, geojson_file):
    with pytest.raises(CommandError, match="no layer 'test-io-missing'.*--create-layer"):
        run_import(geojson_file, "test-io-missing")


def test_unsupported_file_type_is_rejected(seeded, tmp_path):
    path = tmp_path / "ban_do.kml"
    path.write_text("<kml/>")
    assert "unsupported file type '.kml'" in assert_rejected(path, seeded)
