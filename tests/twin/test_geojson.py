# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin.geojson.geometry_dict`` writes what OGR writes, without GDAL."""
from __future__ import annotations

import json

import pytest
from django.contrib.gis.geos import GEOSGeometry

from twin.geojson import geometry_dict

SHAPES = [
    "POINT(107.58 16.46)", "POINT Z(1 2 3)", "LINESTRING(0 0,1 1)", "LINESTRING Z(0 0 1,1 1 2)",
    "POLYGON((0 0,1 0,1 1,0 0),(0.1 0.1,0.2 0.1,0.2 0.2,0.1 0.1))", "MULTIPOINT(0 0,1 1)",
    "MULTILINESTRING((0 0,1 1),(2 2,3 3))", "MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))",
    "GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1))", "LINEARRING(0 0,1 0,1 1,0 0)",
    "POLYGON EMPTY", "MULTIPOLYGON EMPTY", "GEOMETRYCOLLECTION EMPTY",
]


@pytest.mark.parametrize("wkt", SHAPES)
def test_geometry_dict_equals_what_ogr_writes(wkt):
    geom = GEOSGeometry(wkt, srid=4326)
    assert geometry_dict(geom) == json.loads(geom.geojson)


def test_an_empty_point_has_empty_coordinates_where_ogr_gives_nothing():
    assert geometry_dict(GEOSGeometry("POINT EMPTY", srid=4326)) == {"type": "Point", "coordinates": []}


def test_the_output_is_plain_json():
    geom = GEOSGeometry("MULTIPOLYGON(((107 16,108 16,108 17,107 16)))", srid=4326)
    assert json.loads(json.dumps(geometry_dict(geom))) == geometry_dict(geom)


def test_a_lonlat_point_gives_the_same_object_as_geos():
    from django.contrib.gis.geos import Point

    from twin.points import lonlat_point

    assert geometry_dict(lonlat_point(107.58, 16.46)) == json.loads(Point(107.58, 16.46, srid=4326).geojson)
