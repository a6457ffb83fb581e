# SPDX-License-Identifier: AGPL-3.0-or-later
"""Any city loads from the same kinds of files: here Đà Nẵng (province 48), beside Huế.

The test writes its own city.toml, a wards GeoJSON cut from the real
province outline, and a tiny OSM XML extract, then loads them with
``load_city --config``.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import shapely
from pyproj import Geod
from django.conf import settings
from django.core.management import CommandError, call_command

from twin.models import AdminArea, AdminLevel, City, Feature, Layer
from twin.services.areas import resolve_point

PROVINCES = (Path(settings.CITY_FIXTURES_DIR).parent / "admin" / "vn_provinces_2025.geojson").resolve()
WARD_BOX = (108.15, 16.00, 108.26, 16.10)  # central Đà Nẵng (Hải Châu, Thanh Khê)

pytestmark = pytest.mark.django_db

# Node ids and positions (lon, lat) of the tiny extract. Node 4 joins the two roads.
NODES = {
    1: (108.2000, 16.0500), 2: (108.2010, 16.0500), 3: (108.2010, 16.0510), 4: (108.2000, 16.0510),
    11: (108.2100, 16.0600), 12: (108.2120, 16.0600), 13: (108.2120, 16.0620), 14: (108.2100, 16.0620),
    21: (108.2200, 16.0700), 22: (108.2210, 16.0710), 23: (108.2220, 16.0720), 24: (108.2210, 16.0730),
    25: (108.2230, 16.0700),
    31: (108.2150, 16.0650),
    41: (105.8542, 21.0285),  # in Hà Nội, outside Đà Nẵng's extent (which reaches the Hoàng Sa islands)
}
OSM_XML = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="citytwin-test">
{nodes}
  <node id="31" version="1" lat="16.0650" lon="108.2150">
    <tag k="amenity" v="hospital"/><tag k="name" v="Bệnh viện Đà Nẵng"/><tag k="phone" v="+84 236 3821 118"/>
  </node>
  <node id="41" version="1" lat="21.0285" lon="105.8542"><tag k="amenity" v="hospital"/></node>
  <way id="100" version="1">
    <nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
    <tag k="building" v="apartments"/><tag k="height" v="20 m"/>
  </way>
  <way id="101" version="1">
    <nd ref="11"/><nd ref="12"/><nd ref="13"/><nd ref="14"/><nd ref="11"/>
    <tag k="building" v="yes"/><tag k="building:levels" v="4"/>
  </way>
  <way id="200" version="1">
    <nd ref="21"/><nd ref="22"/><nd ref="23"/>
    <tag k="highway" v="primary"/><tag k="name" v="Đường Bạch Đằng"/><tag k="oneway" v="yes"/>
    <tag k="maxspeed" v="50"/><tag k="lanes" v="2"/>
  </way>
  <way id="201" version="1">
    <nd ref="22"/><nd ref="24"/>
    <tag k="highway" v="residential"/><tag k="oneway" v="-1"/>
  </way>
  <way id="202" version="1">
    <nd ref="23"/><nd ref="25"/>
    <tag k="highway" v="construction"/>
  </way>
</osm>
"""

CITY_TOML = """
slug = "da-nang"
name_vi = "Thành phố Đà Nẵng"
name_en = "Đà Nẵng City"
center = [108.2022, 16.0544]
zoom = 13
extent_margin_m = 1000

[province]
file = "{provinces}"
code = "48"
attribution = "Vietnamese Provinces Database © 2021 Thang Le Quoc (MIT)"
layer = {{ slug = "vn-provinces", title_vi = "Tỉnh, thành phố (2025)", is_public = true }}

[wards]
file = "wards.geojson"
attribution = "test ward"
layer = {{ slug = "da-nang-wards", title_vi = "Phường, xã Đà Nẵng" }}

[[agencies]]
code = "da-nang-cong-an"
name_vi = "Công an thành phố Đà Nẵng"
name_en = "Đà Nẵng City Police"
categories = ["security"]
contact = {{ hotline = "113" }}

[ward_agency]
code = "ubnd-{{code}}"
name_vi = "UBND {{full_name}}"

[osm]
file = "extract.osm"
metres_per_level = 3.0
default_building_height_m = 6.0

[[osm.layers]]
extract = "buildings"
slug = "da-nang-buildings"
title_vi = "Công trình"
tags = {{ building = "*" }}

[[osm.layers]]
extract = "roads"
slug = "da-nang-roads"
title_vi = "Đường"
tags = {{ highway = ["primary", "residential"] }}

[[osm.layers]]
extract = "poi"
slug = "da-nang-hospitals"
title_vi = "Bệnh viện"
tags = {{ amenity = ["hospital"] }}
"""


@pytest.fixture
def da_nang_dir(tmp_path: Path) -> Path:
    provinces = json.loads(PROVINCES.read_text(encoding="utf-8"))
    outline = next(shapely.geometry.shape(f["geometry"]) for f in provinces["features"]
                   if f["properties"]["code"] == "48")
    ward = outline.intersection(shapely.box(*WARD_BOX))
    (tmp_path / "wards.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": shapely.geometry.mapping(ward),
        "properties": {"code": "48001", "name": "Thử Nghiệm", "nameEn": "Thu Nghiem", "fullName": "Phường Thử Nghiệm",
                       "fullNameEn": "Thu Nghiem Ward", "province_code": "48"}}]}), encoding="utf-8")
    nodes = "\n".join(f'  <node id="{i}" version="1" lat="{lat}" lon="{lon}"/>' for i, (lon, lat) in NODES.items()
                      if i not in {31, 41})
    (tmp_path / "extract.osm").write_text(OSM_XML.format(nodes=nodes), encoding="utf-8")
    (tmp_path / "city.toml").write_text(CITY_TOML.format(provinces=PROVINCES), encoding="utf-8")
    return tmp_path


@pytest.fixture
def da_nang(da_nang_dir: Path) -> tuple[City, str]:
    out = io.StringIO()
    call_command("load_city", config=da_nang_dir / "city.toml", stdout=out, no_progress=True)
    return City.objects.get(slug="da-nang"), out.getvalue()


def test_another_city_loads_into_its_own_layers(da_nang):
    city, _ = da_nang
    assert city.province.code == "48" and city.name_vi == "Thành phố Đà Nẵng"
    assert set(Layer.objects.filter(city=city).values_list("slug", flat=True)) == {
        "da-nang-wards", "da-nang-buildings", "da-nang-roads", "da-nang-hospitals"}
    assert AdminArea.objects.get(level=AdminLevel.WARD, code="48001").parent == city.province


def test_another_city_leaves_hue_untouched(hue, da_nang_dir):
    def snapshot():
        layers = {layer.slug: layer.features.count() for layer in Layer.objects.filter(city=hue)}
        return layers, AdminArea.objects.filter(parent=hue.province).count(), hue.province.agencies.count()

    before = snapshot()
    call_command("load_city", config=da_nang_dir / "city.toml", verbosity=0)
    assert snapshot() == before
    hue.refresh_from_db()
    assert hue.province.code == "46" and before[0]["hue-buildings"] == 6877


def test_buildings_take_height_then_levels_with_the_citys_own_storey_height(da_nang):
    buildings = {f.external_id: f for f in Feature.objects.filter(layer__slug="da-nang-buildings")}
    assert set(buildings) == {"w100", "w101"}
    assert (buildings["w100"].height_m, buildings["w100"].properties["height_source"]) == (20.0, "height_tag")
    assert (buildings["w101"].height_m, buildings["w101"].properties["height_source"]) == (12.0, "levels")
    assert buildings["w100"].properties["building"] == "apartments"


def test_roads_split_at_the_shared_node_with_oneway_directions(da_nang):
    edges = {f.external_id: f.properties for f in Feature.objects.filter(layer__slug="da-nang-roads")}
    assert set(edges) == {"w200-0", "w200-1", "w201-0"}  # construction is not routable
    assert (edges["w200-0"]["source"], edges["w200-0"]["target"]) == (21, 22)
    assert (edges["w200-1"]["source"], edges["w200-1"]["target"]) == (22, 23)
    assert (edges["w201-0"]["source"], edges["w201-0"]["target"]) == (22, 24)
    assert edges["w200-0"]["oneway"] == 1 and edges["w201-0"]["oneway"] == -1
    assert edges["w200-0"]["maxspeed_kmh"] == 50 and edges["w200-0"]["lanes"] == 2
    expected = Geod(ellps="WGS84").inv(*NODES[21], *NODES[22])[2]
    assert edges["w200-0"]["length_m"] == pytest.approx(expected, abs=0.01)


def test_features_outside_the_city_extent_are_skipped_and_reported(da_nang):
    _, output = da_nang
    hospitals = Feature.objects.filter(layer__slug="da-nang-hospitals")
    assert list(hospitals.values_list("external_id", flat=True)) == ["n31"]
    assert hospitals.get().properties["phone"] == "+84 236 3821 118"
    assert "1 feature(s) outside the city extent skipped" in output


def test_a_point_in_the_new_city_resolves_to_its_ward_province_and_agencies(da_nang):
    where = resolve_point(108.2022, 16.0544, "security")
    assert (where.ward.code, where.province.code) == ("48001", "48")
    assert [a.code for a in where.agencies] == ["da-nang-cong-an", "ubnd-48001"]
    assert where.agencies[1].name_vi == "UBND Phường Thử Nghiệm"


def test_reloading_the_new_city_changes_nothing(da_nang, da_nang_dir):
    counts = Feature.objects.filter(layer__city=da_nang[0]).count()
    out = io.StringIO()
    call_command("load_city", config=da_nang_dir / "city.toml", stdout=out, no_progress=True)
    assert Feature.objects.filter(layer__city=da_nang[0]).count() == counts
    assert "1 inserted" not in out.getvalue() and " 1 updated" not in out.getvalue()


def test_a_city_cannot_take_over_another_citys_layer(da_nang_dir):
    text = (da_nang_dir / "city.toml").read_text(encoding="utf-8")
    (da_nang_dir / "city.toml").write_text(text.replace('slug = "da-nang-buildings"', 'slug = "hue-buildings"'),
                                           encoding="utf-8")
    with pytest.raises(CommandError, match=r"layer 'hue-buildings' already belongs to hue"):
        call_command("load_city", config=da_nang_dir / "city.toml", verbosity=0)
