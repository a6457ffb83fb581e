# SPDX-License-Identifier: AGPL-3.0-or-later
"""The OpenAPI 3.0 definition of the layers API (conformance class ``oas30``).

Generic over ``{collectionId}``: the set of collections depends on who asks,
and the definition is the same for everybody. Clients such as GDAL read the
``limit`` parameter's ``maximum`` and ``default`` from here.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from layers import openapi_extra
from layers.collections import Collection
from layers.query import DEFAULT_LIMIT, MAX_LIMIT

_EXCEPTION = {"type": "object", "required": ["code"],
              "properties": {"code": {"type": "string"}, "description": {"type": "string"}}}
_LINK = {"type": "object", "required": ["href"],
         "properties": {"href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"},
                        "title": {"type": "string"}}}


def _query(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema,
            "style": "form", "explode": False, **extra}


PARAMETERS: dict[str, dict[str, Any]] = {
    "collectionId": {"name": "collectionId", "in": "path", "required": True, "schema": {"type": "string"},
                     "description": "Collection id: a layer slug, `{slug}.observations` or `geo-events`"},
    "featureId": {"name": "featureId", "in": "path", "required": True, "schema": {"type": "string"},
                  "description": "Feature id (the layer's external id; observation or event number)"},
    "f": _query("f", "Response format", {"type": "string", "enum": ["json", "html"]}),
    "lang": _query("lang", "Language of HTML pages and titles (Vietnamese default)",
                   {"type": "string", "enum": ["vi", "en"], "default": "vi"}),
    "bbox": _query("bbox", "minx,miny,maxx,maxy (or 6 numbers with heights) in bbox-crs; features intersecting it",
                   {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}),
    "crs": _query("crs", "CRS of the returned coordinates (Part 2): CRS84 (default), EPSG:4326 (lat,lon), "
                         "EPSG:3857, WGS 84 UTM or VN-2000 (4756, 3405, 3406, TM-3 zones); see each "
                         "collection's `crs` list", {"type": "string", "format": "uri"}),
    "bbox-crs": _query("bbox-crs", "CRS of bbox: OGC CRS84 (default) or an EPSG URI; EPSG:4326 is lat,lon",
                       {"type": "string", "format": "uri"}),
    "datetime": _query("datetime", "RFC 3339 instant or interval (`start/end`, `..` open); on the temporal "
                                   "property", {"type": "string"}),
    "limit": _query("limit", f"Page size, 1 to {MAX_LIMIT} (larger is refused)",
                    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
    "offset": _query("offset", "Features to skip (paging; follow the `next` links)",
                     {"type": "integer", "minimum": 0, "default": 0}),
    "sortby": _query("sortby", "Comma-separated queryables, `-` for descending: `-height_m,name`",
                     {"type": "string"}),
    "properties": _query("properties", "Only these properties in each feature",
                         {"type": "array", "items": {"type": "string"}}),
    "filter": _query("filter", "CQL2 filter (text or JSON, see filter-lang) over the queryables",
                     {"type": "string"}),
    "filter-lang": _query("filter-lang", "Language of filter",
                          {"type": "string", "enum": ["cql2-text", "cql2-json"], "default": "cql2-text"}),
    "filter-crs": _query("filter-crs", "CRS of geometry literals in filter (default CRS84)",
                         {"type": "string", "format": "uri"}),
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _responses(media: dict[str, Any], *, not_found: bool = True) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}}
    responses = {"200": {"description": "OK", "content": media},
                 "400": {"description": "Invalid parameter", **error}}
    if not_found:
        responses["404"] = {"description": "Unknown collection or feature (or not readable by the caller)", **error}
    return responses


def _get(summary: str, operation_id: str, parameters: list[str], media: dict[str, Any], **kw: Any) -> dict:
    return {"get": {"summary": summary, "operationId": operation_id, "tags": ["features"],
                    "parameters": [_ref(p) for p in parameters], "responses": _responses(media, **kw)}}


def _collection_paths(collections: Sequence[Collection], items: list[str], geojson: dict) -> dict[str, Any]:
    """``/collections/{id}/items`` spelt out per collection, with its queryables as parameters.

    Part 1 §7.15.5 lets clients filter on queryables by name; clients such as
    GDAL learn which names they may send from these parameters.
    """
    paths: dict[str, Any] = {}
    for collection in collections:
        own = [{"name": name, "in": "query", "required": False, "style": "form", "explode": False,
                "description": q.title or name,
                "schema": {"type": q.type, **({"format": q.format} if q.format else {})}}
               for name, q in collection.provider.fields().items() if not q.is_geometry]
        operation = _get(f"Features of {collection.id}", f"getFeatures-{collection.id}",
                         [p for p in items if p != "collectionId"], geojson)
        operation["get"]["parameters"] += own
        paths[f"/collections/{collection.id}/items"] = operation
    return paths


def document(base: str, collections: Sequence[Collection] = ()) -> dict[str, Any]:
    """The OpenAPI document for a server at ``base`` (``scheme://host[:port]``).

    ``collections`` are those the caller may read; each gets its own items
    path listing its queryables (never a collection the caller cannot see).
    """
    json_media = {"application/json": {"schema": {"type": "object"}}, "text/html": {"schema": {"type": "string"}}}
    geojson = {"application/geo+json": {"schema": {"type": "object"}}, "text/html": {"schema": {"type": "string"}}}
    items = ["collectionId", "bbox", "bbox-crs", "datetime", "limit", "offset", "sortby", "properties", "filter",
             "filter-lang", "filter-crs", "crs", "f", "lang"]
    return {
        "openapi": "3.0.3",
        "info": {"title": "CityTwin layers API (OGC API – Features)", "version": "1.0.0",
                 "description": "Layers, observations and geo-events of the city twin. Private collections answer "
                                "404 unless the caller is authenticated (session or `Authorization: Bearer`).",
                 "license": {"name": "AGPL-3.0-or-later (code); data keep their own licences"}},
        "servers": [{"url": base}],
        "tags": [{"name": "features"}, {"name": "spatial", "description": "Spatial queries and exports"},
                 {"name": "tiles", "description": "Vector tiles (TileJSON, MVT)"}],
        "paths": {
            "/": _get("Landing page", "getLandingPage", ["f", "lang"], json_media, not_found=False),
            "/conformance": _get("Conformance classes", "getConformance", ["f"], json_media, not_found=False),
            "/api": _get("This document", "getApi", ["f"], {"application/vnd.oai.openapi+json;version=3.0":
                                                             {"schema": {"type": "object"}}}, not_found=False),
            "/collections": _get("Collections", "getCollections", ["f", "lang"], json_media, not_found=False),
            "/collections/{collectionId}": _get("A collection", "describeCollection",
                                                ["collectionId", "f", "lang"], json_media),
            "/collections/{collectionId}/queryables": _get(
                "Queryable properties (JSON Schema)", "getQueryables", ["collectionId", "f", "lang"],
                {"application/schema+json": {"schema": {"type": "object"}}}),
            "/collections/{collectionId}/items": _get("Features", "getFeatures", items, geojson),
            "/collections/{collectionId}/items/{featureId}": _get(
                "One feature", "getFeature", ["collectionId", "featureId", "crs", "f", "lang"], geojson),
            **_collection_paths(collections, items, geojson),
            **openapi_extra.paths(_responses),
        },
        "components": {"parameters": {**PARAMETERS, **openapi_extra.PARAMETERS}, "schemas": {"exception": _EXCEPTION, "link": _LINK},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
