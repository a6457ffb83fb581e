# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin load-city``: Huế from its shipped files, re-runs, and another city from its own files.

The session fixture in ``tests/conftest.py`` has loaded Huế once. Expected
OSM counts come from an independent reader, GDAL's OSM driver through
pyogrio, not from the pyosmium code under test.
"""
from __future__ import annotations

import io
import re
from collections import Counter, defaultdict
from pathlib import Path

import pyogrio
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from pyproj import Geod

from twin.cities.config import load_config
from twin.models import AdminArea, AdminLevel, Agency, City, Feature, Layer
from twin.services.areas import resolve_point

HUE_DIR = Path(settings.CITY_FIXTURES_DIR) / "hue"
OSM_FILE = HUE_DIR / "hue_city_osm_extract.osm.pbf"

pytestmark = pytest.mark.django_db


def _tag(other_tags: object, key: str) -> str | None:
    """A tag value from GDAL's ``other_tags`` hstore text."""
    if not isinstance(other_tags, str):
        return None
    match = re.search(rf'"{re.escape(key)}"=>"([^"]*)"', other_tags)
    return match.group(1) if match else None


@pytest.fixture(scope="module")
def gdal_buildings():
    frame = pyogrio.read_dataframe(OSM_FILE, layer="multipolygons", read_geometry=False,
                                   columns=["osm_id", "osm_way_id", "building", "other_tags"])
    frame = frame[frame.building.notna()]
    return {(f"r{r.osm_id}" if isinstance(r.osm_id, str) else f"w{r.osm_way_id}"): r.other_tags
            for r in frame.itertuples()}


@pytest.fixture(scope="module")
def gdal_road_way_ids():
    classes = set(load_config(HUE_DIR / "city.toml").osm.layers[1].tags["highway"])
    frame = pyogrio.read_dataframe(OSM_FILE, layer="lines", read_geometry=False, columns=["osm_id", "highway"])
    return {int(r.osm_id) for r in frame.itertuples() if r.highway in classes}


def _count(slug: str) -> int:
    return Feature.objects.filter(layer__slug=slug).count()


def _counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT l.slug, count(f.id) FROM twin_layer l LEFT JOIN twin_feature f ON f.layer_id = l.id "
                       "GROUP BY l.slug")
        layers = dict(cursor.fetchall())
    return {**layers, "admin_areas": AdminArea.objects.count(), "agencies": Agency.objects.count(),
            "cities": City.objects.count(), "layers": Layer.objects.count()}


# --- administrative frame --------------------------------------------------------------------------------------

def test_hue_has_its_40_wards_and_the_34_provinces_of_vietnam():
    assert AdminArea.objects.filter(level=AdminLevel.PROVINCE).count() == 34
    province = AdminArea.objects.get(level=AdminLevel.PROVINCE, code="46")
    assert province.name_vi == "Huế"
    assert AdminArea.objects.filter(level=AdminLevel.WARD, parent=province).count() == 40
    assert _count("vn-provinces") == 34 and _count("hue-wards") == 40


def test_every_admin_area_is_drawn_by_a_feature_of_its_layer():
    for area in AdminArea.objects.select_related("feature__layer"):
        assert area.feature is not None, area
        assert area.feature.external_id == area.code
        assert area.feature.layer.slug == ("vn-provinces" if area.level == AdminLevel.PROVINCE else "hue-wards")
        assert area.feature.layer.kind == "admin_area"


def test_provinces_layer_is_national_and_city_layers_belong_to_hue(hue):
    assert Layer.objects.get(slug="vn-provinces").city is None
    # Other apps add their own layers to the city (citizen reports, cameras): only ours are checked.
    assert set(Layer.objects.filter(city=hue).values_list("slug", flat=True)) >= {
        "hue-wards", "hue-buildings", "hue-roads", "hue-hospitals", "hue-fire-stations", "hue-police",
        "hue-fire-hydrants", "hue-hotels", "hue-attractions", "hue-museums", "hue-rivers", "hue-heritage-sites",
        "hue-imperial-city"}


def test_city_extent_is_the_province_box_grown_by_the_margin_in_metres(hue):
    margin = load_config(HUE_DIR / "city.toml").extent_margin_m
    west, south, east, north = hue.province.geom.extent
    x0, y0, x1, y1 = hue.extent.extent
    geod = Geod(ellps="WGS84")
    assert geod.inv(west, south, west, y0)[2] == pytest.approx(margin, rel=1e-3)
    assert geod.inv(west, north, west, y1)[2] == pytest.approx(margin, rel=1e-3)
    assert geod.inv(east, north, x1, north)[2] == pytest.approx(margin, rel=1e-3)
    assert hue.extent.covers(hue.province.geom) and hue.extent.covers(hue.center)


def test_city_records_its_source_files_with_sha256(hue):
    files = hue.sources["files"]
    assert set(files) == {"vn_provinces_2025.geojson", "hue_wards_2025.geojson", "hue_city_osm_extract.osm.pbf",
                          "hue_heritage_sites_handdrawn.geojson", "hue_imperial_city_wall_handdrawn.geojson"}
    assert all(re.fullmatch(r"[0-9a-f]{64}", f["sha256"]) for f in files.values())
    assert hue.loaded_at is not None and "OpenStreetMap" in hue.attribution


@pytest.mark.parametrize(("lon", "lat", "code", "name"), [
    (107.5786, 16.4679, "19753", "Phú Xuân"),  # Ngọ Môn, the Meridian Gate
    (107.5447, 16.4537, "19774", "Kim Long"),  # Thiên Mụ pagoda
])
def test_point_resolves_to_its_ward_and_province_46(lon, lat, code, name):
    where = resolve_point(lon, lat)
    assert (where.ward.code, where.ward.name_vi) == (code, name)
    assert where.province.code == "46"


def test_police_category_is_handled_by_cong_an_first_then_the_ward_committee():
    where = resolve_point(107.5786, 16.4679, "security")
    assert [a.code for a in where.agencies] == ["hue-cong-an", "ubnd-19753"]
    assert where.agencies[0].name_vi == "Công an thành phố Huế"
    assert where.agencies[0].contact["hotline"] == "113"


def test_fire_category_goes_to_the_fire_police_with_hotline_114():
    agency = resolve_point(107.5786, 16.4679, "fire").agencies[0]
    assert agency.code == "hue-pccc-cnch" and agency.contact["hotline"] == "114"


def test_unknown_category_falls_back_to_the_wards_peoples_committee():
    agencies = resolve_point(107.5447, 16.4537, "no-such-category").agencies
    assert [a.name_vi for a in agencies] == ["UBND Phường Kim Long"]
    assert agencies[0].categories == ["*"]


def test_every_ward_has_exactly_one_default_handler_and_province_agencies_cover_46():
    for ward in AdminArea.objects.filter(level=AdminLevel.WARD):
        assert list(ward.agencies.filter(categories__contains=["*"]).values_list("code", flat=True)) == [
            f"ubnd-{ward.code}"]
    province_agencies = Agency.objects.filter(jurisdiction__code="46", jurisdiction__level=AdminLevel.PROVINCE)
    assert province_agencies.count() == 8
    assert {c for a in province_agencies for c in a.categories} >= {
        "security", "traffic", "public_order", "fire", "rescue", "health", "medical_emergency", "roads",
        "drainage", "environment", "air_quality", "waste", "tourism", "heritage", "flood", "storm", "landslide"}


# --- OpenStreetMap layers ---------------------------------------------------------------------------------------

def test_building_count_equals_the_independent_gdal_count(gdal_buildings):
    assert len(gdal_buildings) == 6877  # MANIFEST: 6,877 buildings
    ids = set(Feature.objects.filter(layer__slug="hue-buildings").values_list("external_id", flat=True))
    assert ids == set(gdal_buildings)


def test_every_building_has_a_height_from_its_tags_or_the_documented_default(gdal_buildings):
    sources = Counter()
    for external_id, height, props in Feature.objects.filter(layer__slug="hue-buildings").values_list(
            "external_id", "height_m", "properties"):
        other_tags = gdal_buildings[external_id]
        tagged_height, levels = _tag(other_tags, "height"), _tag(other_tags, "building:levels")
        if tagged_height is not None:
            expected = (float(tagged_height.removesuffix("m").strip()), "height_tag")
        elif levels is not None:
            expected = (float(levels) * 3.5, "levels")
        else:
            expected = (7.0, "default")
        assert (height, props["height_source"]) == expected, external_id
        sources[props["height_source"]] += 1
    assert sources == {"default": 6822, "levels": 50, "height_tag": 5}


def test_road_ways_equal_the_independent_gdal_count(gdal_road_way_ids):
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT (properties->>'osm_way_id')::bigint FROM twin_feature f "
                       "JOIN twin_layer l ON l.id = f.layer_id WHERE l.slug = 'hue-roads'")
        way_ids = {row[0] for row in cursor.fetchall()}
    assert len(gdal_road_way_ids) == 14021  # MANIFEST's 14,088 highway ways minus areas, construction, corridor
    assert way_ids == gdal_road_way_ids


def test_road_edges_are_routable_between_shared_osm_node_ids():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT external_id, (properties->>'source')::bigint, (properties->>'target')::bigint, "
            "ST_AsText(ST_StartPoint(geom)), ST_AsText(ST_EndPoint(geom)), (properties->>'length_m')::float8, "
            "ST_Length(geom::geography) FROM twin_feature f JOIN twin_layer l ON l.id = f.layer_id "
            "WHERE l.slug = 'hue-roads'")
        edges = cursor.fetchall()
    assert len(edges) > 14021  # split at junctions
    node_points: dict[int, set[str]] = defaultdict(set)
    degree: Counter[int] = Counter()
    for _, source, target, start, end, length, geography_length in edges:
        assert source and target
        node_points[source].add(start)
        node_points[target].add(end)
        degree.update((source, target))
        assert length == pytest.approx(geography_length, rel=1e-3, abs=0.05)
    assert all(len(points) == 1 for points in node_points.values()), "a node id sits at two places"
    assert sum(1 for d in degree.values() if d >= 3) > 5000  # real junctions join edges of several ways


def test_edges_of_one_way_chain_target_to_source():
    chains: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for external_id, props in Feature.objects.filter(layer__slug="hue-roads").values_list("external_id", "properties"):
        way, index = external_id[1:].split("-")
        assert int(way) == props["osm_way_id"]
        chains[way].append((int(index), props["source"], props["target"]))
    for parts in chains.values():
        parts.sort()
        assert all(a[2] == b[1] for a, b in zip(parts, parts[1:]))


def test_largest_connected_component_holds_nearly_all_edges():
    parent: dict[int, int] = {}

    def find(node: int) -> int:
        while parent.get(node, node) != node:
            parent[node] = parent.get(parent[node], parent[node])
            node = parent[node]
        return node

    edges = list(Feature.objects.filter(layer__slug="hue-roads").values_list("properties__source",
                                                                             "properties__target"))
    for source, target in edges:
        a, b = find(source), find(target)
        if a != b:
            parent[a] = b
    biggest = Counter(find(source) for source, _ in edges).most_common(1)[0][1]
    assert biggest / len(edges) > 0.99


def test_oneway_follows_tags_and_roundabouts_are_one_way():
    roads = Feature.objects.filter(layer__slug="hue-roads")
    roundabouts = roads.filter(properties__junction="roundabout")
    assert roundabouts.exists() and not roundabouts.exclude(properties__oneway=1).exists()
    lines = pyogrio.read_dataframe(OSM_FILE, layer="lines", read_geometry=False,
                                   columns=["osm_id", "highway", "other_tags"])
    tagged = {value: {int(r.osm_id) for r in lines.itertuples() if _tag(r.other_tags, "oneway") == value}
              for value in ("yes", "no")}
    way_ids = set(roads.values_list("properties__osm_way_id", flat=True))
    one_way = set(roads.filter(properties__oneway=1).values_list("properties__osm_way_id", flat=True))
    two_way = set(roads.filter(properties__oneway=0).values_list("properties__osm_way_id", flat=True))
    assert tagged["yes"] & way_ids and tagged["yes"] & way_ids <= one_way
    assert tagged["no"] & way_ids and tagged["no"] & way_ids <= two_way
    # Motorways are one-way unless tagged otherwise: the two-lane expressway here says oneway=no.
    assert set(roads.filter(properties__highway="motorway").values_list("properties__oneway", flat=True)) == {0, 1}


@pytest.mark.parametrize(("slug", "poi_type", "at_least"), [
    ("hue-hospitals", "hospital", 15), ("hue-fire-stations", "fire_station", 2), ("hue-police", "police", 5),
    ("hue-fire-hydrants", "fire_hydrant", 18), ("hue-hotels", "hotel", 120),
])
def test_poi_layers_hold_points_of_their_type(slug, poi_type, at_least):
    features = Feature.objects.filter(layer__slug=slug)
    assert features.filter(properties__poi_type=poi_type).count() >= at_least
    assert {f.geom.geom_type for f in features} == {"Point"}


@pytest.mark.parametrize(("slug", "site_type", "count"), [("hue-attractions", "attraction", 74),
                                                           ("hue-museums", "museum", 15)])
def test_tourist_layers_hold_attractions_and_museums(slug, site_type, count):
    assert Feature.objects.filter(layer__slug=slug, layer__kind="tourist_site",
                                  properties__site_type=site_type).count() == count


def test_the_perfume_river_is_in_the_rivers_layer_as_line_and_surface():
    song_huong = Feature.objects.filter(layer__slug="hue-rivers", name="Sông Hương")
    assert {f.geom.geom_type for f in song_huong} == {"LineString", "MultiPolygon"}
    assert Layer.objects.get(slug="hue-rivers").kind == "water"


# --- hand-drawn layers ------------------------------------------------------------------------------------------

def test_heritage_layer_holds_the_repaired_self_intersecting_polygon():
    sites = Feature.objects.filter(layer__slug="hue-heritage-sites")
    assert sites.count() == 23
    repaired = sites.get(external_id="123000020")
    assert repaired.geom.valid and repaired.geom.geom_type in {"Polygon", "MultiPolygon"}
    assert sites.get(external_id="12300001").name == "Thiên Mụ pagoda"
    assert sites.get(external_id="12300001").properties["unesco"] is True


def test_imperial_city_outline_contains_the_meridian_gate():
    outline = Feature.objects.get(layer__slug="hue-imperial-city")
    assert outline.name == "Hoàng thành Huế (Đại Nội)"
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_DWithin(geom::geography, ST_MakePoint(107.5786, 16.4679)::geography, 100) "
                       "FROM twin_feature WHERE id = %s", [outline.pk])
        assert cursor.fetchone()[0]


# --- re-running --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rerun(django_db_setup, django_db_blocker):
    """Load Huế a second time (committed), with the counts before and after and the command output."""
    with django_db_blocker.unblock():
        before = _counts()
        out = io.StringIO()
        call_command("load_city", stdout=out, no_progress=True)
        return before, _counts(), out.getvalue()


def test_rerunning_load_city_changes_no_counts(rerun):
    before, after, _ = rerun
    assert after == before


def test_rerunning_load_city_inserts_and_updates_nothing(rerun):
    output = rerun[2]
    summaries = [line for line in output.splitlines() if " rows, " in line]
    assert len(summaries) == 14
    assert all(", 0 inserted, 0 updated, 0 removed" in line for line in summaries), output
    assert "agencies: 0 created, 0 updated, 0 removed" in output


def test_load_reports_the_repaired_heritage_polygon(rerun):
    output = rerun[2]
    assert re.search(r"hue-heritage-sites: row 20 \(id '123000020'\): Self-intersection", output), output
    assert "ST_MakeValid" in output


def test_load_city_by_slug_is_the_default_city():
    out = io.StringIO()
    call_command("load_city", "hue", stdout=out, verbosity=1, no_progress=True)
    assert "Loaded Thành phố Huế (hue)" in out.getvalue()


# --- bad input ---------------------------------------------------------------------------------------------------

def _write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "city.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _hue_config_with_absolute_paths() -> str:
    text = (HUE_DIR / "city.toml").read_text(encoding="utf-8")
    return re.sub(r'^file = "(.*)"$', lambda m: f'file = "{(HUE_DIR / m.group(1)).resolve()}"', text, flags=re.M)


def test_unknown_key_in_city_config_is_a_clear_command_error(tmp_path):
    text = _hue_config_with_absolute_paths().replace("zoom = 13", "zoom = 13\nzooom = 14")
    with pytest.raises(CommandError, match=r"zooom: Extra inputs are not permitted"):
        call_command("load_city", config=_write_config(tmp_path, text), verbosity=0)


def test_bad_value_in_city_config_names_the_field(tmp_path):
    text = _hue_config_with_absolute_paths().replace('extract = "roads"', 'extract = "railways"')
    with pytest.raises(CommandError, match=r"osm\.layers\.1\.extract: Input should be"):
        call_command("load_city", config=_write_config(tmp_path, text), verbosity=0)


def test_missing_data_file_is_a_clear_command_error(tmp_path):
    text = (HUE_DIR / "city.toml").read_text(encoding="utf-8")
    config = _write_config(tmp_path, text)  # relative paths now point into tmp_path, where nothing is
    with pytest.raises(CommandError, match=r"province\.file: Value error, file not found: .*vn_provinces_2025"):
        call_command("load_city", config=config, verbosity=0)


def test_unknown_city_slug_is_a_clear_command_error():
    with pytest.raises(CommandError, match=r"no city 'atlantis' in .*known: .*hue"):
        call_command("load_city", "atlantis", verbosity=0)


def test_config_that_is_not_toml_is_a_clear_command_error(tmp_path):
    with pytest.raises(CommandError, match=r"cannot read city config"):
        call_command("load_city", config=_write_config(tmp_path, "slug = "), verbosity=0)
