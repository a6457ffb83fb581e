# SPDX-License-Identifier: AGPL-3.0-or-later
"""OGC API – Features Part 2: ``crs`` returns coordinates in VN-2000, UTM, Web Mercator or lat/lon.

Ground truth is pyproj with the operation the import path prefers for
VN-2000 (EPSG:6960, twin/io/crs.py) applied to the CRS84 output: they must
agree to the rounding of that output (7 decimals of a degree, ~1 cm).
"""
from __future__ import annotations

import pytest
from pyproj import CRS

from tests.layers.ogc_fixtures import *  # noqa: F403
from tests.layers.ogc_fixtures import assert_ogc_error, json_of
from twin.io.crs import reprojection_to_wgs84

pytestmark = pytest.mark.django_db

EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
ITEMS = "/collections/hue-hospitals/items"


def _points(client, **params) -> tuple[dict[str, list[float]], str]:
    response = client.get(ITEMS, {"limit": 5, "sortby": "name", **params})
    assert response.status_code == 200, response.content
    return {f["id"]: f["geometry"]["coordinates"] for f in json_of(response)["features"]}, response["Content-Crs"]


@pytest.mark.parametrize("code", [3405, 9214, 4756, 32648, 3857])
def test_coordinates_match_pyproj_with_the_preferred_operation(client, code):
    lonlat, _ = _points(client)
    projected, header = _points(client, crs=EPSG.format(code))
    assert header == f"<{EPSG.format(code)}>"
    back = reprojection_to_wgs84(CRS.from_epsg(code)).transformer  # target -> WGS 84, always_xy
    for fid, (lon, lat) in lonlat.items():
        x, y = projected[fid]
        if code == 4756:  # geographic VN-2000: latitude first, as EPSG defines it
            x, y = y, x
        expected = back.transform(lon, lat, direction="INVERSE")
        # The lon/lat input is itself rounded to 7 decimals (~1 cm), so compare to 2 cm.
        tolerance = 2e-7 if code == 4756 else 0.02  # degrees or metres
        assert abs(x - expected[0]) < tolerance and abs(y - expected[1]) < tolerance, (code, fid)


def test_vn2000_differs_from_wgs84_utm_by_the_datum_shift(client):
    vn2000, _ = _points(client, crs="EPSG:3405")
    wgs84, _ = _points(client, crs="EPSG:32648")
    for fid in vn2000:
        shift = ((vn2000[fid][0] - wgs84[fid][0]) ** 2 + (vn2000[fid][1] - wgs84[fid][1]) ** 2) ** 0.5
        assert 150 < shift < 400, shift  # VN-2000 sits a couple of hundred metres off WGS 84 around Huế


def test_epsg_4326_is_latitude_first(client):
    crs84, header84 = _points(client)
    epsg4326, header = _points(client, crs=EPSG.format(4326))
    assert header84 == f"<{CRS84}>" and header == f"<{EPSG.format(4326)}>"
    assert all(epsg4326[fid] == [lat, lon] for fid, (lon, lat) in crs84.items())


def test_one_feature_in_another_crs(client):
    fid = next(iter(_points(client)[0]))
    response = client.get(f"{ITEMS}/{fid}", {"crs": "EPSG:3405"})
    assert response["Content-Crs"] == f"<{EPSG.format(3405)}>"
    assert json_of(response)["geometry"]["coordinates"][0] > 100_000  # metres, not degrees


def test_paging_links_keep_the_crs(client):
    body = json_of(client.get(ITEMS, {"limit": 2, "crs": "EPSG:3405"}))
    following = next(link["href"] for link in body["links"] if link["rel"] == "next")
    assert "crs=" in following and "3405" in following


def test_collection_lists_the_offered_crs_and_conformance_declares_part_2(client):
    collection = json_of(client.get("/collections/hue-hospitals"))
    assert collection["storageCrs"] == CRS84 and collection["crs"][0] == CRS84
    assert EPSG.format(3405) in collection["crs"] and EPSG.format(4326) in collection["crs"]
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in json_of(client.get("/conformance"))[
        "conformsTo"]


@pytest.mark.parametrize("crs, says", [
    ("EPSG:2056", "not offered"),  # a real CRS (Swiss), just not one this server offers
    ("EPSG:999999", "not a known CRS"),
    ("EPSG:3405'); DROP TABLE twin_feature; --", "unknown or unsupported CRS"),
    ("banana", "unknown or unsupported CRS"),
])
def test_unusable_crs_is_a_400_that_says_why(client, crs, says):
    response = client.get(ITEMS, {"crs": crs})
    assert_ogc_error(response, 400)
    assert says in json_of(response)["description"]


def test_exports_refuse_another_crs_instead_of_ignoring_it(client):
    response = client.get(ITEMS, {"f": "csv", "crs": "EPSG:3405"})
    assert_ogc_error(response, 400)
    assert "CRS84" in json_of(response)["description"]
