# SPDX-License-Identifier: AGPL-3.0-or-later
"""`twin camera load`: cameras on real Huế roads, their fields of view as a layer served by the layers API."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from cameras.load import load_cameras
from tests.cameras.support import HUE_CAMERAS
from twin.errors import InvalidInput
from twin.models import Feature, Layer

pytestmark = pytest.mark.django_db


def test_loading_writes_the_camera_layer_and_the_field_of_view_layer(hue):
    summary = load_cameras(HUE_CAMERAS)
    assert set(summary) == {"hue-cameras", "hue-camera-fov"}
    cameras = Layer.objects.get(slug="hue-cameras")
    fov = Layer.objects.get(slug="hue-camera-fov")
    assert (cameras.kind, fov.kind, cameras.city, fov.city) == ("camera", "camera_fov", hue, hue)
    cam = Feature.objects.get(layer=cameras, external_id="cam-hungvuong-01")
    assert cam.properties["mast_height_m"] == 10 and cam.properties["config"]["lines"][0]["name"] == "right"
    assert cam.properties["stream_url"].startswith("file://") and "{shared_data}" not in cam.properties["stream_url"]
    sector = Feature.objects.get(layer=fov, external_id="cam-hungvuong-01")
    assert sector.geom.geom_type == "Polygon" and sector.properties["camera"] == "cam-hungvuong-01"
    assert sector.geom.touches(cam.geom) or sector.geom.intersects(cam.geom)     # the apex is the camera


@pytest.mark.parametrize("camera, road", [("cam-hungvuong-01", "Hùng Vương"), ("cam-leduan-01", "Lê Duẩn")])
def test_each_demo_camera_stands_on_its_osm_road_and_looks_along_it(hue, camera, road):
    load_cameras(HUE_CAMERAS)
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT min(ST_Distance(r.geom::geography, c.geom::geography)),
                   max(ST_Length(ST_Intersection(r.geom, v.geom)::geography))
            FROM twin_feature c
            JOIN twin_layer cl ON cl.id = c.layer_id AND cl.slug = 'hue-cameras'
            JOIN twin_feature v ON v.external_id = c.external_id
            JOIN twin_layer vl ON vl.id = v.layer_id AND vl.slug = 'hue-camera-fov'
            JOIN twin_feature r ON r.name = %s
            JOIN twin_layer rl ON rl.id = r.layer_id AND rl.slug = 'hue-roads'
            WHERE c.external_id = %s""", [road, camera])
        distance_m, road_inside_fov_m = cursor.fetchone()
    assert distance_m < 1.0                      # on the road's centre line
    assert road_inside_fov_m > 10                # and the road runs inside its field of view


def test_loading_twice_updates_in_place(hue):
    load_cameras(HUE_CAMERAS)
    summary = load_cameras(HUE_CAMERAS)
    assert "0 inserted" in summary["hue-cameras"]
    assert Feature.objects.filter(layer__slug="hue-camera-fov").count() == 2


def test_a_camera_with_an_invalid_config_is_refused_and_nothing_is_written(hue, tmp_path: Path):
    text = HUE_CAMERAS.read_text(encoding="utf-8").replace('line = "right"', 'line = "nope"', 1)
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput, match="(?s)cam-hungvuong-01.*unknown line"):
        load_cameras(bad)
    assert not Layer.objects.filter(slug__in=["hue-cameras", "hue-camera-fov"]).exists()


def test_the_command_loads_the_default_city_cameras(hue, capsys):
    call_command("camera", "load")
    assert "hue-camera-fov: 2 rows" in capsys.readouterr().out


def test_the_fields_of_view_are_served_by_the_layers_api_with_no_map_code(hue, client, django_user_model):
    load_cameras(HUE_CAMERAS)
    client.force_login(django_user_model.objects.create_superuser("cam-admin", password="x"))
    collection = client.get("/collections/hue-camera-fov?f=json")
    assert collection.status_code == 200
    meta = json.loads(collection.content)["x-citytwin"]
    assert meta["kind"] == "camera_fov" and meta["style"]["type"] == "fill" and meta["style"]["fill_opacity"] < 0.5
    items = client.get("/collections/hue-camera-fov/items?f=json")
    assert items.status_code == 200
    body = json.loads(items.content)
    assert {f["properties"]["camera"] for f in body["features"]} == {"cam-hungvuong-01", "cam-leduan-01"}
    assert {f["geometry"]["type"] for f in body["features"]} == {"Polygon"}
    cams = json.loads(client.get("/collections/hue-cameras/items?f=json").content)
    assert {f["properties"]["heading_deg"] for f in cams["features"]} == {133.6, 323.2}
    tilejson = client.get("/tiles/hue-camera-fov")          # what the 3D map draws polygon layers from
    assert tilejson.status_code == 200 and json.loads(tilejson.content)["tiles"]
