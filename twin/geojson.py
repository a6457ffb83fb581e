# SPDX-License-Identifier: AGPL-3.0-or-later
"""GEOS geometry → GeoJSON geometry object, without GDAL.

``json.loads(geom.geojson)`` is what Django offers, but its ``geojson`` goes
through OGR: it builds a GDAL geometry from WKB and imports the EPSG
definition of its SRID for every call (60 µs for a point, against ~5 here).
Every live event message and every report filed built one, so py-spy found
that conversion at a fifth of the report writer's time. GeoJSON (RFC 7946
§3.1) is just nested coordinate arrays, which GEOS gives directly.

Coordinates are written as stored (our features are in EPSG:4326, RFC 7946's
only CRS); like OGR, no reprojection is made.
"""
from __future__ import annotations

from typing import Any

from django.contrib.gis.geos import GEOSGeometry, Point


def geometry_dict(geom: GEOSGeometry) -> dict[str, Any]:
    """The GeoJSON geometry object of ``geom`` (lists, as ``json.loads`` would give).

    The kind comes from the Python class (Django gives every geometry the class
    of its GEOS type, named as GeoJSON names them): each GEOS call through
    ctypes costs microseconds and releases the GIL, so a point makes two
    (``empty``, ``coords``), and a :class:`twin.points.LonLatPoint` none.

    >>> from django.contrib.gis.geos import Point, Polygon
    >>> geometry_dict(Point(107.58, 16.46, srid=4326))
    {'type': 'Point', 'coordinates': [107.58, 16.46]}
    >>> geometry_dict(Polygon(((0, 0), (1, 0), (1, 1), (0, 0))))["coordinates"]
    [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]
    """
    if isinstance(geom, Point):                  # first: a LonLatPoint answers without GEOS
        return {"type": "Point", "coordinates": [] if geom.empty else list(geom.coords)}
    kind = type(geom).__name__
    if kind == "GeometryCollection":
        return {"type": kind, "geometries": [geometry_dict(part) for part in geom]}
    if kind == "LinearRing":
        kind = "LineString"                      # GeoJSON has no ring type; OGR writes it as a LineString
    if geom.empty:
        return {"type": kind, "coordinates": []}
    return {"type": kind, "coordinates": _lists(geom.coords)}


def _lists(coords: Any) -> Any:
    """GEOS's nested coordinate tuples as nested lists (a coordinate is a tuple of floats)."""
    if coords and isinstance(coords[0], float):
        return list(coords)
    return [_lists(part) for part in coords]


__all__ = ["geometry_dict"]
