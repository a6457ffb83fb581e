# SPDX-License-Identifier: AGPL-3.0-or-later
"""OpenAPI paths of the layers API beyond OGC API – Features Part 1: spatial queries, exports, tiles.

Kept beside :mod:`layers.openapi` (which owns the document and the shared
parameters) so the Features core reads as the standard describes it, and
these extension endpoints (layers/spatial_api.py, layers/tiles.py) are
described next to each other. Clients such as schemathesis or a generated
SDK find every endpoint the map and notebooks use here.
"""
from __future__ import annotations

from typing import Any

from layers.exports import FILE_FORMATS
from twin.spatial import MAX_RESULTS
from twin.spatial_areas import DEFAULT_AREA_LIMIT, MAX_AREA_RESULTS
from twin.spatial_wards import STATS


def _query(name: str, description: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema,
            "style": "form", "explode": False}


def _path(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {"type": "string"}}


_NUMBER = {"type": "number"}
_PREDICATE = {"type": "string", "enum": ["intersects", "within"], "default": "intersects"}

PARAMETERS: dict[str, dict[str, Any]] = {
    "lon": _query("lon", "Longitude of the point, WGS 84 degrees", _NUMBER, required=True),
    "lat": _query("lat", "Latitude of the point, WGS 84 degrees", _NUMBER, required=True),
    "radius_m": _query("radius_m", "Radius in metres (on the spheroid)", {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                       required=True),
    "max_distance_m": _query("max_distance_m", "Ignore features farther than this, metres", _NUMBER),
    "nearestLimit": _query("limit", f"How many features, 1 to {MAX_RESULTS}",
                           {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "default": 10}),
    "withinLimit": _query("limit", f"At most this many features, 1 to {MAX_RESULTS}",
                          {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "default": MAX_RESULTS}),
    "areaLimit": _query("limit", f"Page size, 1 to {MAX_AREA_RESULTS}",
                        {"type": "integer", "minimum": 1, "maximum": MAX_AREA_RESULTS,
                         "default": DEFAULT_AREA_LIMIT}),
    "areaCode": _path("code", "Official code of the admin area (ward 19753, province 46, ...)"),
    "level": _query("level", "Admin level of the code: 0 country, 1 province, 2 district, 3 ward",
                    {"type": "integer", "enum": [0, 1, 2, 3]}),
    "predicate": _query("predicate", "`intersects` (default) or `within` the area", _PREDICATE),
    "geom": _query("geom", "The polygon, WKT or GeoJSON (or POST a GeoJSON body instead)", {"type": "string"}),
    "line": _query("line", "The line, WKT or GeoJSON (or POST a GeoJSON body instead)", {"type": "string"}),
    "buffer_m": _query("buffer_m", "Distance from the line, metres", {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                       required=True),
    "property": _query("property", "A numeric queryable to aggregate per ward", {"type": "string"}),
    "stats": _query("stats", "Comma-separated statistics of `property`",
                    {"type": "array", "items": {"type": "string", "enum": list(STATS)}}),
    "resultFormat": _query("f", "json (GeoJSON page) or a file of the whole result",
                           {"type": "string", "enum": ["json", *FILE_FORMATS], "default": "json"}),
    "wardFormat": _query("f", "choropleth GeoJSON (json), a plain table, or a file",
                         {"type": "string", "enum": ["json", "table", *FILE_FORMATS], "default": "json"}),
    "exportFormat": _query("f", "File format of the export",
                           {"type": "string", "enum": list(FILE_FORMATS)}, required=True),
    "latestDatetime": _query("datetime", "The moment, an RFC 3339 instant (default now)",
                             {"type": "string", "format": "date-time"}),
    "latestLimit": _query("limit", "Page size over the layer's features, 1 to 10000",
                          {"type": "integer", "minimum": 1, "maximum": 10000, "default": 5000}),
    "layer": _path("layer", "Layer slug"),
    "z": _path("z", "Zoom level", {"type": "integer", "minimum": 0}),
    "x": _path("x", "Tile column", {"type": "integer", "minimum": 0}),
    "yExt": _path("y", "Tile row with the extension: `{y}.mvt` (or `.pbf`)", {"type": "string",
                                                                              "pattern": "^[0-9]+\\.(mvt|pbf)$"}),
}

_GEOJSON_BODY = {"required": False, "description": "The geometry as GeoJSON (a Geometry or a Feature)",
                 "content": {"application/geo+json": {"schema": {"type": "object"}},
                             "application/json": {"schema": {"type": "object"}}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _operation(summary: str, operation_id: str, tag: str, parameters: list[str], responses: dict) -> dict:
    return {"summary": summary, "operationId": operation_id, "tags": [tag],
            "parameters": [_ref(p) for p in parameters], "responses": responses}


def _with_body(operation: dict) -> dict:
    return {**operation, "operationId": operation["operationId"] + "-post", "requestBody": _GEOJSON_BODY}


def paths(responses) -> dict[str, Any]:
    """The extension paths; ``responses(media)`` builds the 200/400/404 map (layers.openapi)."""
    features = responses({"application/geo+json": {"schema": {"type": "object"}},
                          "application/geopackage+sqlite3": {"schema": {"type": "string", "format": "binary"}},
                          "text/csv": {"schema": {"type": "string"}},
                          "text/html": {"schema": {"type": "string"}}})
    common = ["collectionId", "lang"]
    polygon = _operation("Features in a drawn polygon", "getFeaturesInPolygon", "spatial",
                         [*common, "geom", "predicate", "areaLimit", "offset", "resultFormat"], features)
    along = _operation("Features along a line, within a buffer, ordered along it", "getFeaturesAlong", "spatial",
                       [*common, "line", "buffer_m", "areaLimit", "offset", "resultFormat"], features)
    mvt = responses({"application/vnd.mapbox-vector-tile": {"schema": {"type": "string", "format": "binary"}}})
    mvt["204"] = {"description": "Empty tile"}
    mvt["304"] = {"description": "Not modified (If-None-Match matched the ETag)"}
    return {
        "/collections/{collectionId}/nearest": {"get": _operation(
            "The k features nearest to a point, with distances in metres", "getNearestFeatures", "spatial",
            [*common, "lon", "lat", "nearestLimit", "max_distance_m", "resultFormat"], features)},
        "/collections/{collectionId}/within": {"get": _operation(
            "Features within a radius of a point, nearest first", "getFeaturesWithinRadius", "spatial",
            [*common, "lon", "lat", "radius_m", "withinLimit", "resultFormat"], features)},
        "/collections/{collectionId}/area/{code}": {"get": _operation(
            "Features in an admin area given by its official code", "getFeaturesInArea", "spatial",
            [*common, "areaCode", "level", "predicate", "areaLimit", "offset", "resultFormat"], features)},
        "/collections/{collectionId}/polygon": {"get": polygon, "post": _with_body(polygon)},
        "/collections/{collectionId}/along": {"get": along, "post": _with_body(along)},
        "/collections/{collectionId}/per-ward": {"get": _operation(
            "Count (and statistics of a numeric property) per ward, for choropleths", "getPerWard", "spatial",
            [*common, "property", "stats", "wardFormat"], features)},
        "/collections/{collectionId}/export": {"get": _operation(
            "Any /items query (same parameters) as a file: GeoJSON, GeoPackage, CSV or kepler.gl HTML",
            "exportFeatures", "spatial", ["collectionId", "bbox", "bbox-crs", "datetime", "sortby", "properties",
                                          "filter", "filter-lang", "filter-crs", "exportFormat"], features)},
        "/collections/{collectionId}/labels": {"get": _operation(
            "One label point per named feature (inside its polygon), for map labels without outlines",
            "getLabelPoints", "spatial", common, responses({"application/geo+json": {"schema": {"type": "object"}}}))},
        "/collections/{collectionId}/latest": {"get": _operation(
            "Each feature's latest observed values (and whether it was offline) as of a moment", "getLatestReadings",
            "spatial", [*common, "latestDatetime", "latestLimit", "offset"],
            responses({"application/json": {"schema": {"type": "object"}}}))},
        "/tiles": {"get": _operation("Tile sets the caller may read", "getTileSets", "tiles", [],
                                     responses({"application/json": {"schema": {"type": "object"}}},
                                               not_found=False))},
        "/tiles/{layer}": {"get": _operation("TileJSON 3.0.0 of a layer", "getTileJSON", "tiles", ["layer"],
                                             responses({"application/json": {"schema": {"type": "object"}}}))},
        "/tiles/{layer}/{z}/{x}/{y}": {"get": _operation(
            "A Mapbox Vector Tile; dense point tiles hold clusters with counts", "getTile", "tiles",
            ["layer", "z", "x", "yExt"], mvt)},
    }
