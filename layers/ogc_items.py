# SPDX-License-Identifier: AGPL-3.0-or-later
"""The items resources (OGC API – Features Part 1 §7.15-7.16, Part 3 filtering).

The GeoJSON of the features comes from PostgreSQL as one string; here it is
wrapped with ``numberReturned``, ``numberMatched`` (when known cheaply),
``timeStamp`` and the paging links. ``next``/``prev`` keep every other
parameter of the request, so a client can follow them to the end.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import quote

from layers.collections import Collection, readable_collection
from layers.crs import parse_output_crs
from layers.errors import InvalidInput
from layers.ogc import GEOJSON, HTML, Answer, ApiRequest, ITEM_PARAMETERS, self_links, html_answer, link
from layers.providers.base import FeaturePage
from layers.query import FeatureQuery, parse_feature_query, safe_name

#: how many properties the HTML table shows as columns
HTML_COLUMNS = 6


def parse_items_query(req: ApiRequest, found: Collection) -> FeatureQuery:
    """The request's parameters as a :class:`FeatureQuery` for this collection (400 on any bad one)."""
    provider = found.provider
    return parse_feature_query(req.params, provider.fields(), temporal=provider.temporal, allowed=ITEM_PARAMETERS)


def _paging_links(req: ApiRequest, q: FeatureQuery, page: FeaturePage) -> list[dict[str, str]]:
    media = HTML if req.fmt == "html" else GEOJSON
    links = self_links(req, GEOJSON)
    if page.has_more:
        links.append(link(req.with_params(offset=q.offset + q.limit, limit=q.limit), "next", media))
    if q.offset > 0:
        previous = max(0, q.offset - q.limit)
        links.append(link(req.with_params(offset=previous or None, limit=q.limit), "prev", media))
    return links


def items(req: ApiRequest, collection_id: str) -> Answer:
    """``/collections/{id}/items``: one page of features as GeoJSON (or an HTML table)."""
    found = readable_collection(req.user, collection_id)
    q = parse_items_query(req, found)
    page = found.provider.query(q)
    head = {"type": "FeatureCollection", "timeStamp": _now(), "numberReturned": page.number_returned}
    if page.number_matched is not None:
        head["numberMatched"] = page.number_matched
    head["links"] = [*_paging_links(req, q, page),
                     link(req.url(f"/collections/{quote(found.id, safe='')}"), "collection", "application/json")]
    if req.fmt == "html":
        return _items_html(req, found, q, head, page)
    # Python only wraps the features PostgreSQL serialised: no parse, no re-encode.
    text = json.dumps(head, ensure_ascii=False)[:-1] + ',"features":[' + page.features_json + "]}"
    return 200, {"Content-Type": GEOJSON, "Content-Crs": q.crs.header}, text


def item(req: ApiRequest, collection_id: str, fid: str) -> Answer:
    """``/collections/{id}/items/{fid}``: one feature with its links (§7.16)."""
    found = readable_collection(req.user, collection_id)
    unknown = [k for k in req.params if k not in ITEM_PARAMETERS]
    if unknown:
        raise InvalidInput(f"unknown query parameter {safe_name(unknown[0])}")
    crs = parse_output_crs(req.params.get("crs"))
    feature_text = found.provider.get(fid, crs)
    collection_url = req.url(f"/collections/{quote(found.id, safe='')}")
    links = [*self_links(req, GEOJSON), link(collection_url, "collection", "application/json")]
    if req.fmt == "html":
        feature = json.loads(feature_text)
        return html_answer(req, "item.html", {"collection": found, "feature": feature, "links": links,
                                              "rows": _property_rows(feature)})
    text = feature_text[:-1] + ',"links":' + json.dumps(links, ensure_ascii=False) + "}"
    return 200, {"Content-Type": GEOJSON, "Content-Crs": crs.header}, text


def _items_html(req: ApiRequest, found: Collection, q: FeatureQuery, head: dict, page: FeaturePage) -> Answer:
    features = page.features
    columns: list[str] = []
    for feature in features:
        for key in feature.get("properties") or {}:
            if key not in columns and len(columns) < HTML_COLUMNS:
                columns.append(key)
    base = f"/collections/{quote(found.id, safe='')}/items/"
    rows = [{"id": f["id"], "href": req.url(base + quote(str(f["id"]), safe=""), f="html", lang=req.lang),
             "geometry": (f.get("geometry") or {}).get("type", ""),
             "cells": [_cell((f.get("properties") or {}).get(c)) for c in columns]} for f in features]
    links = {item["rel"]: item["href"] for item in head["links"] if item["rel"] in {"next", "prev"}}
    return html_answer(req, "items.html", {"collection": found, "head": head, "columns": columns, "rows": rows,
                                           "next": links.get("next"), "prev": links.get("prev"), "query": q})


def _property_rows(feature: dict) -> list[tuple[str, str]]:
    return [(key, _cell(value)) for key, value in (feature.get("properties") or {}).items()]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)[:200]
    return str(value)[:200]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

