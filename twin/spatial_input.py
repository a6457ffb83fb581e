# SPDX-License-Identifier: AGPL-3.0-or-later
"""Geometry drawn by users (WKT or GeoJSON), parsed and checked before any SQL runs.

A polygon drawn on a map or pasted from QGIS is hostile until proven
otherwise: it may be in the wrong CRS (metres read as degrees), self-
intersecting, or the size of a country. Each check here raises
:class:`~twin.errors.InvalidInput` (400) with a message that says what is
wrong and never echoes more than a short, safe part of the input. Sizes are
measured on the WGS 84 ellipsoid (``pyproj.Geod``), so the caps are true
square kilometres and kilometres, never degrees.

>>> poly = checked_polygon(parse_geometry("POLYGON((107.57 16.46, 107.59 16.46, 107.59 16.48, 107.57 16.46))"))
>>> round(geodesic_area_km2(poly), 2)
2.36
>>> checked_polygon(parse_geometry('{"type": "Point", "coordinates": [107.5, 16.4]}'))
Traceback (most recent call last):
...
twin.errors.InvalidInput: geom must be a Polygon or MultiPolygon, not a Point
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

import shapely
from pyproj import Geod
from shapely.errors import GEOSException
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from twin.errors import InvalidInput

MAX_INPUT_CHARS = 1_000_000
MAX_VERTICES = 10_000
MAX_POLYGON_KM2 = 10_000.0   # about twice the whole of Huế: bigger areas are exports, not queries
MAX_LINE_KM = 200.0
WGS84 = Geod(ellps="WGS84")
# RFC 7946 §4: GeoJSON is always WGS 84 lon/lat; the old "crs" member may only confirm it.
_LON_LAT_CRS = re.compile(r"(?i)(urn:ogc:def:crs:OGC:1\.3:CRS84|.*/def/crs/OGC/1\.3/CRS84|EPSG:4326|"
                          r"urn:ogc:def:crs:EPSG:[0-9.]*:4326|.*/def/crs/EPSG/0/4326)")
_EWKT_SRID = re.compile(r"^\s*SRID\s*=\s*(\d{1,9})\s*;", re.IGNORECASE)


def parse_geometry(text: str, name: str = "geom") -> BaseGeometry:
    """A 2D shapely geometry in lon/lat from WKT, EWKT (SRID 4326 only) or GeoJSON text.

    GeoJSON may be a geometry or a Feature. Anything in another CRS is
    refused rather than guessed: swapped or projected coordinates would
    silently select the wrong place.

    >>> parse_geometry("SRID=4326;POINT(107.5 16.4)").wkt
    'POINT (107.5 16.4)'
    >>> parse_geometry("SRID=3857;POINT(11967000 1856000)")
    Traceback (most recent call last):
    ...
    twin.errors.InvalidInput: geom must be in EPSG:4326 (lon/lat), not EPSG:3857
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"{name} is required: WKT such as POLYGON((lon lat, ...)) or a GeoJSON geometry")
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidInput(f"{name} is longer than {MAX_INPUT_CHARS} characters")
    text = text.strip()
    geom = _from_geojson(text, name) if text.startswith("{") else _from_wkt(text, name)
    return _checked_lon_lat(shapely.force_2d(geom), name)


def parse_geojson_object(value: Any, name: str = "geom") -> BaseGeometry:
    """Like :func:`parse_geometry` for an already decoded JSON value (a POST body)."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} must be a GeoJSON geometry or Feature object")
    return _checked_lon_lat(shapely.force_2d(_geojson_geometry(value, name)), name)


def _from_wkt(text: str, name: str) -> BaseGeometry:
    if match := _EWKT_SRID.match(text):
        if match.group(1) != "4326":
            raise InvalidInput(f"{name} must be in EPSG:4326 (lon/lat), not EPSG:{match.group(1)}")
        text = text[match.end():]
    try:
        return shapely.from_wkt(text)
    except (GEOSException, ValueError, TypeError):
        # GEOS' message quotes the input; the client gets a fixed hint instead.
        raise InvalidInput(f"{name} is not valid WKT or GeoJSON; expected e.g. "
                           "POLYGON((107.57 16.46, 107.59 16.46, 107.59 16.48, 107.57 16.46))") from None


def _from_geojson(text: str, name: str) -> BaseGeometry:
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidInput(f"{name} is not valid JSON (GeoJSON) or WKT") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} must be a GeoJSON geometry or Feature object")
    return _geojson_geometry(value, name)


def _geojson_geometry(value: dict, name: str) -> BaseGeometry:
    crs = value.get("crs")
    if crs is not None:
        crs_name = str(((crs or {}).get("properties") or {}).get("name", "")) if isinstance(crs, dict) else ""
        if not _LON_LAT_CRS.fullmatch(crs_name):
            raise InvalidInput(f"{name}: GeoJSON must be WGS 84 lon/lat (RFC 7946); other CRS are not accepted")
    if value.get("type") == "Feature":
        value = value.get("geometry")
        if not isinstance(value, dict):
            raise InvalidInput(f"{name}: the GeoJSON Feature has no geometry")
    if value.get("type") in {"FeatureCollection", "GeometryCollection"}:
        raise InvalidInput(f"{name} must be a single GeoJSON geometry or Feature, not a {value['type']}")
    try:
        return shape(value)
    except (GEOSException, ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise InvalidInput(f"{name} is not a valid GeoJSON geometry (check 'type' and 'coordinates')") from None


def _checked_lon_lat(geom: BaseGeometry, name: str) -> BaseGeometry:
    if geom is None or geom.is_empty:
        raise InvalidInput(f"{name} is empty")
    coords = shapely.get_coordinates(geom)
    if not all(math.isfinite(v) for v in coords.flat):
        raise InvalidInput(f"{name} has coordinates that are not finite numbers")
    west, south, east, north = geom.bounds
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise InvalidInput(f"{name} must be in lon/lat degrees (EPSG:4326): longitudes -180..180, "
                           "latitudes -90..90, longitude first")
    return geom


def _check_vertices(geom: BaseGeometry, name: str) -> None:
    count = shapely.get_num_coordinates(geom)
    if count > MAX_VERTICES:
        raise InvalidInput(f"{name} has {count} vertices; at most {MAX_VERTICES} are accepted (simplify it)")


def geodesic_area_km2(geom: BaseGeometry) -> float:
    """Area on the WGS 84 ellipsoid in km² (holes subtracted)."""
    area, _ = WGS84.geometry_area_perimeter(geom)
    return abs(area) / 1e6


def geodesic_length_km(geom: BaseGeometry) -> float:
    """Length of a line on the WGS 84 ellipsoid in km.

    >>> round(geodesic_length_km(shapely.LineString([(107.0, 16.0), (107.0, 17.0)])), 1)
    110.7
    """
    return WGS84.geometry_length(geom) / 1000


def checked_polygon(geom: BaseGeometry, name: str = "geom") -> BaseGeometry:
    """``geom`` if it is a valid Polygon/MultiPolygon within the vertex and area caps."""
    if geom.geom_type not in {"Polygon", "MultiPolygon"}:
        raise InvalidInput(f"{name} must be a Polygon or MultiPolygon, not a {geom.geom_type}")
    _check_vertices(geom, name)
    if not geom.is_valid:
        # e.g. "Self-intersection[107.58 16.47]": the reason and where, so the user can fix the drawing.
        raise InvalidInput(f"{name} is not a valid polygon: {shapely.is_valid_reason(geom)[:120]}")
    area = geodesic_area_km2(geom)
    if area > MAX_POLYGON_KM2:
        raise InvalidInput(f"{name} covers {area:,.0f} km²; at most {MAX_POLYGON_KM2:,.0f} km² are accepted")
    if area <= 0:
        raise InvalidInput(f"{name} has no area")
    return geom


def checked_line(geom: BaseGeometry, name: str = "line") -> BaseGeometry:
    """``geom`` if it is a LineString of at least two distinct points within the caps."""
    if geom.geom_type != "LineString":
        raise InvalidInput(f"{name} must be a LineString, not a {geom.geom_type}")
    _check_vertices(geom, name)
    length = geodesic_length_km(geom)
    if length <= 0:
        raise InvalidInput(f"{name} must have at least two distinct points")
    if length > MAX_LINE_KM:
        raise InvalidInput(f"{name} is {length:,.1f} km long; at most {MAX_LINE_KM:,.0f} km are accepted")
    return geom
