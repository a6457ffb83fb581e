# SPDX-License-Identifier: AGPL-3.0-or-later
"""OGC API – Features resources as plain functions: request in, ``(status, headers, body)`` out.

They know nothing of Django's request/response classes (pygeoapi's
``api.py`` split); :mod:`layers.api` wraps them as views. Each parses its
input first (:mod:`layers.query`), then asks a provider.

Specs: OGC API – Features Part 1 (17-069r4), Part 3 (19-079r2), CQL2
(21-065r2). Section numbers below refer to them.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import quote, urlencode

from django.template.loader import render_to_string

from layers.collections import Collection, readable_collection, readable_collections
from layers.labels import labels
from layers.providers.base import Extent
from layers.crs import CRS84, STORAGE_CRS, offered_crs

logger = logging.getLogger(__name__)

JSON, GEOJSON, HTML = "application/json", "application/geo+json", "text/html"
SCHEMA_JSON = "application/schema+json"
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
REL_TILESETS = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
REL_CONFORMANCE = "http://www.opengis.net/def/rel/ogc/1.0/conformance"
REL_DATA = "http://www.opengis.net/def/rel/ogc/1.0/data"
TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"

#: only what is implemented and tested (tests/layers/test_ogc_*.py)
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
)

Answer = tuple[int, dict[str, str], str]
ITEM_PARAMETERS = frozenset({"f", "lang", "crs"})


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """What the resources need to know of a request (built by :mod:`layers.api`)."""

    base: str                      # scheme://host[:port], no trailing slash
    path: str
    params: Mapping[str, str]
    user: Any
    fmt: str = "json"              # json | html
    lang: str = "vi"

    def url(self, path: str, **params: str) -> str:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return f"{self.base}{path}" + (f"?{query}" if query else "")

    def with_params(self, **changes: Any) -> str:
        """This request's URL with some parameters replaced (``None`` drops one); others kept in order."""
        params = dict(self.params)
        for key, value in changes.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = str(value)
        query = urlencode(params)
        return f"{self.base}{self.path}" + (f"?{query}" if query else "")


def link(href: str, rel: str, media_type: str, title: str | None = None) -> dict[str, str]:
    found = {"href": href, "rel": rel, "type": media_type}
    if title:
        found["title"] = title
    return found


def self_links(req: ApiRequest, json_type: str = JSON) -> list[dict[str, str]]:
    """``self`` in the format served and ``alternate`` in the other (§7.2.2)."""
    json_link, html_link = req.with_params(f="json"), req.with_params(f="html")
    if req.fmt == "html":
        return [link(html_link, "self", HTML), link(json_link, "alternate", json_type)]
    return [link(req.with_params(), "self", json_type), link(html_link, "alternate", HTML)]


def json_answer(body: Any, media_type: str = JSON, status: int = 200) -> Answer:
    return status, {"Content-Type": media_type}, json.dumps(body, ensure_ascii=False, default=str)


def html_answer(req: ApiRequest, template: str, context: dict[str, Any], status: int = 200) -> Answer:
    page = {"t": labels(req.lang), "lang": req.lang, "req": req,
            "json_url": req.with_params(f="json"), "other_lang_url": req.with_params(lang="en" if req.lang == "vi"
                                                                                     else "vi"), **context}
    return status, {"Content-Type": "text/html; charset=utf-8"}, render_to_string(f"layers/{template}", page)


# --- landing, conformance --------------------------------------------------------------------------

def landing(req: ApiRequest) -> Answer:
    """The landing page (§7.2): links to the API definition, conformance and collections."""
    t = labels(req.lang)
    links = [*self_links(req),
             link(req.url("/api"), "service-desc", OPENAPI_JSON, t["api_doc"]),
             link(req.url("/api", f="html"), "service-doc", HTML, t["api_doc"]),
             link(req.url("/conformance"), "conformance", JSON, t["conformance"]),
             link(req.url("/conformance"), REL_CONFORMANCE, JSON, t["conformance"]),
             link(req.url("/collections"), "data", JSON, t["collections"]),
             link(req.url("/collections"), REL_DATA, JSON, t["collections"])]
    body = {"title": t["api_title"], "description": t["intro"], "links": links}
    if req.fmt == "html":
        collections = readable_collections(req.user)
        sources = sorted({c.attribution for c in collections if c.attribution})
        return html_answer(req, "landing.html", {"body": body, "collections": collections, "sources": sources})
    return json_answer(body)


def conformance(req: ApiRequest) -> Answer:
    body = {"conformsTo": list(CONFORMANCE)}
    if req.fmt == "html":
        return html_answer(req, "conformance.html", {"body": body})
    return json_answer(body)


# --- collections ------------------------------------------------------------------------------------

def _extent(extent: Extent) -> dict[str, Any] | None:
    found: dict[str, Any] = {}
    if extent.bbox:
        found["spatial"] = {"bbox": [list(extent.bbox)], "crs": CRS84}
    if extent.interval:
        found["temporal"] = {"interval": [[v.astimezone(UTC).isoformat().replace("+00:00", "Z") if v else None
                                           for v in extent.interval]], "trs": TRS}
    return found or None


def collection_document(req: ApiRequest, collection: Collection) -> dict[str, Any]:
    """One collection's description (§7.14) with its links."""
    t = labels(req.lang)
    base = f"/collections/{quote(collection.id, safe='')}"
    links = [link(req.url(base), "self", JSON, collection.title(req.lang)),
             link(req.url(base, f="html"), "alternate", HTML),
             link(req.url(base + "/items"), "items", GEOJSON, t["items"]),
             link(req.url(base + "/items", f="html"), "items", HTML, t["items"]),
             link(req.url(base + "/queryables"), REL_QUERYABLES, SCHEMA_JSON, t["queryables"])]
    if collection.provider.supports_tiles and collection.layer is not None:
        links.append(link(req.url(f"/tiles/{quote(collection.id, safe='')}"), REL_TILESETS, JSON))
    document: dict[str, Any] = {
        "id": collection.id, "title": collection.title(req.lang), "description": collection.description,
        "itemType": "feature", "crs": list(offered_crs()), "storageCrs": STORAGE_CRS, "links": links,
        "attribution": collection.attribution,
        "x-citytwin": {"kind": collection.kind, "title_vi": collection.title_vi, "title_en": collection.title_en,
                       "geometryType": collection.geometry_type, "style": dict(collection.style),
                       "public": bool(collection.layer and collection.layer.is_public)},
    }
    measured = collection.extent()
    extent = _extent(measured)
    if extent:
        document["extent"] = extent
    if measured.features is not None:  # lets a map choose tiles or GeoJSON without fetching items
        document["x-citytwin"]["features"] = measured.features
    return document


def collections(req: ApiRequest) -> Answer:
    t = labels(req.lang)
    readable = readable_collections(req.user)
    found = [collection_document(req, c) for c in readable]
    body = {"links": self_links(req), "collections": found, "title": t["collections"]}
    if req.fmt == "html":
        rows = [{"doc": doc, "obj": obj} for doc, obj in zip(found, readable)]
        return html_answer(req, "collections.html", {"body": body, "rows": rows})
    return json_answer(body)


def collection(req: ApiRequest, collection_id: str) -> Answer:
    document = collection_document(req, readable_collection(req.user, collection_id))
    document["links"][:2] = self_links(req)
    if req.fmt == "html":
        return html_answer(req, "collection.html", {"body": document})
    return json_answer(document)


_GEOMETRY_FORMATS = {"Point": "geometry-point", "MultiPoint": "geometry-multipoint",
                     "LineString": "geometry-linestring", "MultiLineString": "geometry-multilinestring",
                     "Polygon": "geometry-polygon", "MultiPolygon": "geometry-multipolygon"}


def queryables(req: ApiRequest, collection_id: str) -> Answer:
    """The queryables as a JSON Schema (Part 3 §6.2), roles marked with ``x-ogc-role``."""
    found = readable_collection(req.user, collection_id)
    provider = found.provider
    properties: dict[str, Any] = {}
    for name, queryable in provider.fields().items():
        if queryable.is_geometry:
            properties[name] = {"title": queryable.title or name, "x-ogc-role": "primary-geometry",
                                "format": _GEOMETRY_FORMATS.get(found.geometry_type, "geometry-any")}
            continue
        schema: dict[str, Any] = {"title": queryable.title or name, "type": queryable.type}
        if queryable.format:
            schema["format"] = queryable.format
        if queryable.enum:
            schema["enum"] = list(queryable.enum)
        if name == provider.temporal:
            schema["x-ogc-role"] = "primary-instant"
        properties[name] = schema
    body = {"$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": req.url(f"/collections/{quote(found.id, safe='')}/queryables"),
            "type": "object", "title": found.title(req.lang), "properties": properties,
            "additionalProperties": False}
    if req.fmt == "html":
        return html_answer(req, "queryables.html", {"body": body, "collection": found})
    return json_answer(body, SCHEMA_JSON)
