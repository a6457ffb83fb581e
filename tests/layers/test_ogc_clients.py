# SPDX-License-Identifier: AGPL-3.0-or-later
"""Real clients, unmodified, against a live server: GDAL's OGC API driver and OWSLib.

The live server reads the committed test database (the Huế city loaded once
per session), so these tests use its public layers only.
"""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.layers.ogc_fixtures import *  # noqa: F403
from tests.layers.ogc_fixtures import sql_count
from twin.models import Layer

pytestmark = pytest.mark.django_db
TIMEOUT_S = 120


def gdal(*args: str) -> str:
    if shutil.which(args[0]) is None:
        pytest.fail(f"{args[0]} is missing: install Debian's gdal-bin (client tests never skip)")
    done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def public_slugs() -> set[str]:
    return set(Layer.objects.filter(is_public=True).values_list("slug", flat=True))


def test_ogrinfo_lists_every_public_collection(committed_live_server):
    base = committed_live_server[0]
    listing = gdal("ogrinfo", "-ro", "-so", "-q", f"OAPIF:{base}/")
    listed = {line.split(": ", 1)[1].split(" (", 1)[0] for line in listing.splitlines() if ": " in line}
    assert listed == public_slugs()


def test_ogrinfo_reads_features_with_their_count_and_fields(committed_live_server):
    base = committed_live_server[0]
    summary = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{base}/", "hue-hospitals")
    count = Layer.objects.get(slug="hue-hospitals").features.count()
    assert f"Feature Count: {count}" in summary and "poi_type: String" in summary
    features = gdal("ogrinfo", "-ro", f"OAPIF:{base}/", "hue-hospitals")
    assert features.count("OGRFeature(hue-hospitals)") == count
    assert "POINT (107." in features


def test_ogr2ogr_copies_a_whole_collection_page_by_page(committed_live_server, tmp_path):
    base, out = committed_live_server[0], tmp_path / "hotels.geojson"
    gdal("ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{base}/", "hue-hotels")
    copied = json.loads(out.read_text())["features"]
    layer = Layer.objects.get(slug="hue-hotels")
    assert len(copied) == layer.features.count() > 100  # GDAL pages by 10: 14 requests
    assert {f["properties"]["id"] for f in copied} == set(layer.features.values_list("external_id", flat=True))


def test_ogr2ogr_spatial_and_attribute_filters_give_what_sql_finds(committed_live_server, tmp_path):
    # GDAL sends -spat as bbox and "lanes = 2" as ?lanes=2 (a queryable listed in /api).
    base, out = committed_live_server[0], tmp_path / "roads.geojson"
    gdal("ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{base}/", "hue-roads", "-oo", "PAGE_SIZE=1000",
         "-spat", "107.575", "16.465", "107.585", "16.475", "-where", "lanes = 2")
    copied = json.loads(out.read_text())["features"]
    expected = sql_count("SELECT count(*) FROM twin_feature f JOIN twin_layer l ON l.id = f.layer_id "
                         "WHERE l.slug = 'hue-roads' AND f.properties->>'lanes' = '2' AND "
                         "ST_Intersects(f.geom, ST_MakeEnvelope(107.575, 16.465, 107.585, 16.475, 4326))", [])
    assert len(copied) == expected > 0 and all(f["properties"]["lanes"] == 2 for f in copied)


def test_owslib_pages_through_a_collection(committed_live_server):
    from owslib.ogcapi.features import Features

    api = Features(committed_live_server[0] + "/")
    assert "hue-hotels" in [c["id"] for c in api.collections()["collections"]]
    assert api.conformance()["conformsTo"]
    seen, offset, limit = [], 0, 25
    while True:
        page = api.collection_items("hue-hotels", limit=limit, offset=offset)
        seen += [f["id"] for f in page["features"]]
        if not any(link["rel"] == "next" for link in page["links"]):
            break
        offset += page["numberReturned"]
    assert len(seen) == len(set(seen)) == Layer.objects.get(slug="hue-hotels").features.count()


def test_owslib_filters_sorts_and_reads_queryables(committed_live_server):
    from owslib.ogcapi.features import Features

    api = Features(committed_live_server[0] + "/")
    queryables = api.collection_queryables("hue-buildings")
    assert queryables["properties"]["height_m"]["type"] == "number"
    tall = api.collection_items("hue-buildings", bbox=[107.57, 16.46, 107.59, 16.48], sortby=("height_m", "desc"),
                                limit=5, filter="height_m > 10")
    heights = [f["properties"]["height_m"] for f in tall["features"]]
    assert heights == sorted(heights, reverse=True) and all(h > 10 for h in heights)
    one = api.collection_item("hue-buildings", tall["features"][0]["id"])
    assert one["id"] == tall["features"][0]["id"]
