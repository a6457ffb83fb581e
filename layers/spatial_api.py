# SPDX-License-Identifier: AGPL-3.0-or-later
"""Spatial queries over one collection, as extension endpoints next to OGC ``/items``.

========================================  ==============================================================
``GET /collections/{id}/nearest``         ``lon``, ``lat``, ``limit`` (1-1000, default 10), ``max_distance_m``
``GET /collections/{id}/within``          ``lon``, ``lat``, ``radius_m`` (≤ 200 km), ``limit`` (default 1000)
``GET /collections/{id}/area/{code}``     admin area by official code; ``level``, ``predicate``, paging
``GET|POST /collections/{id}/polygon``    ``geom`` (WKT or GeoJSON) or a GeoJSON body; ``predicate``, paging
``GET|POST /collections/{id}/along``      ``line`` (WKT or GeoJSON) or a GeoJSON body; ``buffer_m``, paging
``GET /collections/{id}/per-ward``        ``property``, ``stats``; ``f=table`` for a plain JSON table
``GET /collections/{id}/export``          the ``/items`` parameters; ``f`` = geojson, gpkg, csv or kepler
========================================  ==============================================================

Paging is ``limit`` (1-10000, default 1000) and ``offset``; ``predicate`` is
``intersects`` (default) or ``within``. Every endpoint takes ``f``: ``json``
(default, GeoJSON with ``numberReturned`` and links), ``geojson``, ``gpkg``,
``csv`` or ``kepler`` (files, see :mod:`layers.exports`). Distances are true
metres (``distance_m``, ``along_m``).

Access is the OGC API's: a collection the caller may not read is a 404,
exactly like one that does not exist. Bad input is a 400 (404 for an
unknown admin area) with the OGC exception body ``{"code",
"description"}``; nothing of the SQL ever reaches a message.
"""
from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Collection as Names, Mapping
from functools import wraps
from urllib.parse import quote

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from layers import exports
from layers.collections import Collection, readable_collection
from layers.errors import InvalidInput, NotSupported
from layers.labels import choose_language
from layers.ogc import JSON, Answer, ApiRequest, json_answer, link
from layers.providers.postgis import run_sql
from layers.query import parse_limit, parse_offset, safe_name
from twin.auth import MethodNotAllowed, authenticate_request, error_response
from twin.errors import PayloadTooLarge, TwinError
from twin.models import Feature
from twin.params import parse_number
from twin.spatial import MAX_RESULTS, Match, MatchPage, NearestQuery, WithinQuery, nearest, within
from twin.spatial_areas import (
    DEFAULT_AREA_LIMIT, MAX_AREA_RESULTS, AlongQuery, AreaQuery, PolygonQuery, along_line, in_admin_area, in_polygon,
)
from twin.spatial_input import checked_line, checked_polygon, parse_geojson_object, parse_geometry
from twin.spatial_wards import WardQuery, WardTable, per_ward

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Content-Crs, Content-Disposition"}
_COMMON = frozenset({"f", "lang"})
_PAGING = frozenset({"limit", "offset"})


# --- parameter parsers (one per parameter; each raises InvalidInput -> 400) ----------------------

def parse_level(params: Mapping[str, str]) -> int | None:
    raw = params.get("level", "").strip()
    if not raw:
        return None
    if raw not in {"0", "1", "2", "3"}:
        raise InvalidInput("parameter 'level' must be 0 (country), 1 (province), 2 (district) or 3 (ward)")
    return int(raw)


def parse_stats(params: Mapping[str, str]) -> tuple[str, ...]:
    raw = params.get("stats", "")
    return tuple(dict.fromkeys(s.strip().lower() for s in raw.split(",") if s.strip()))


def check_names(params: Mapping[str, str], allowed: Names[str]) -> None:
    """Refuse parameters the endpoint does not know: a typo must not silently widen a query."""
    unknown = [k for k in params if k not in allowed and k not in _COMMON]
    if unknown:
        raise InvalidInput(f"unknown query parameter {safe_name(unknown[0])}; this endpoint takes "
                           f"{', '.join(sorted(set(allowed) | _COMMON))}")


def request_geometry(request: HttpRequest, params: Mapping[str, str], name: str):
    """The query geometry: the ``name`` parameter (WKT or GeoJSON) or a GeoJSON POST body, not both."""
    if request.method == "POST":
        if params.get(name):
            raise InvalidInput(f"send the geometry either as parameter {name!r} or as the body, not both")
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES // 1024} KiB; simplify the geometry")
        try:
            body = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("the body must be a GeoJSON geometry or Feature (JSON)") from None
        return parse_geojson_object(body, name)
    return parse_geometry(params.get(name, ""), name)


# --- the view wrapper ------------------------------------------------------------------------------

def _api_request(request: HttpRequest) -> ApiRequest:
    params: dict[str, str] = {}
    for key, values in request.GET.lists():
        if len(values) > 1:
            raise InvalidInput(f"parameter {safe_name(key)} is given more than once")
        params[key] = values[0]
    return ApiRequest(base=f"{request.scheme}://{request.get_host()}", path=request.path, params=params,
                      user=request.user, lang=choose_language(params.get("lang"),
                                                              request.headers.get("Accept-Language", "")))


def _respond(answer: Answer) -> HttpResponse:
    status, headers, body = answer
    response = HttpResponse(body, status=status, content_type=headers.pop("Content-Type"))
    for name, value in {**CORS, **headers}.items():
        response[name] = value
    response["Vary"] = "Accept-Language, Authorization, Cookie"
    return response


def spatial_view(methods: tuple[str, ...] = ("GET",)) -> Callable[[Callable[..., Answer]], Callable]:
    """Authenticate, parse, run ``resource(req, request, **kwargs)``; errors become OGC exceptions."""
    allowed = frozenset(methods) | ({"HEAD"} if "GET" in methods else set())

    def decorate(resource: Callable[..., Answer]) -> Callable[..., HttpResponse]:
        @csrf_exempt  # session-authenticated POSTs are CSRF-checked in authenticate_request
        @wraps(resource)
        def view(request: HttpRequest, **kwargs) -> HttpResponse:
            try:
                if request.method not in allowed:
                    raise MethodNotAllowed(f"{request.method} is not allowed here; use {', '.join(sorted(allowed))}")
                authenticate_request(request)
                return _respond(resource(_api_request(request), request, **kwargs))
            except RequestDataTooBig:
                return _error(PayloadTooLarge("the request body is too large"), request, allowed)
            except TwinError as exc:
                logger.info("%s %s -> %s %s: %s", request.method, request.path, int(exc.status), exc.code,
                            exc.message)
                return _error(exc, request, allowed)
            except Exception:  # the client gets a code, the log gets the traceback
                logger.exception("%s %s failed", request.method, request.path)
                return _error(TwinError("Internal error; it has been logged."), request, allowed)

        return view

    return decorate


def _error(exc: TwinError, request: HttpRequest, allowed: frozenset[str]) -> HttpResponse:
    response = error_response(exc, request)
    if isinstance(exc, MethodNotAllowed):
        response["Allow"] = ", ".join(sorted(allowed))
    for name, value in CORS.items():
        response[name] = value
    return response


# --- shared answer -----------------------------------------------------------------------------------

def _layer_of(req: ApiRequest, collection_id: str) -> tuple[Collection, str]:
    found = readable_collection(req.user, collection_id)
    return found, exports.feature_layer(found).slug


def _answer(req: ApiRequest, found: Collection, page: MatchPage, what: str, label: str, limit: int | None = None,
            offset: int = 0) -> Answer:
    """The result as ``f`` asks: GeoJSON with links (and ``next`` when a page follows) or a file."""
    fmt = exports.parse_format(req.params.get("f"))
    result = exports.ResultSet.from_matches(found.layer, page, name=f"{found.id}-{what}",
                                            title=f"{found.title('vi')} · {label}", attribution=found.attribution)
    links = exports.export_links(req)
    if page.has_more and limit is not None:
        links.append(link(req.with_params(offset=offset + limit, limit=limit), "next", exports.GEOJSON))
    links.append(link(req.url(f"/collections/{quote(found.id, safe='')}"), "collection", JSON))
    return exports.export_response(result, fmt, links)


def _matches(rows) -> MatchPage:
    return MatchPage(tuple(Match(feature.pk, {"distance_m": distance}) for feature, distance in rows))


# --- endpoints ---------------------------------------------------------------------------------------

@spatial_view()
def nearest_view(req: ApiRequest, request: HttpRequest, collection_id: str) -> Answer:
    """The ``limit`` features nearest to ``lon``/``lat``, with ``distance_m`` (spheroid)."""
    check_names(req.params, {"lon", "lat", "limit", "max_distance_m"})
    found, slug = _layer_of(req, collection_id)
    query = NearestQuery(lon=parse_number(req.params, "lon"), lat=parse_number(req.params, "lat"),
                         limit=parse_limit(req.params.get("limit"), default=10, maximum=MAX_RESULTS), layers=(slug,),
                         max_distance_m=parse_number(req.params, "max_distance_m", required=False))
    return _answer(req, found, _matches(nearest(query)), "nearest", "gần nhất / nearest")


@spatial_view()
def within_view(req: ApiRequest, request: HttpRequest, collection_id: str) -> Answer:
    """Features within ``radius_m`` metres of ``lon``/``lat``, nearest first."""
    check_names(req.params, {"lon", "lat", "radius_m", "limit"})
    found, slug = _layer_of(req, collection_id)
    query = WithinQuery(lon=parse_number(req.params, "lon"), lat=parse_number(req.params, "lat"),
                        radius_m=parse_number(req.params, "radius_m"), layers=(slug,),
                        limit=parse_limit(req.params.get("limit"), default=MAX_RESULTS, maximum=MAX_RESULTS))
    return _answer(req, found, _matches(within(query)), "within", "trong bán kính / within radius")


def _page(params: Mapping[str, str]) -> tuple[int, int]:
    return (parse_limit(params.get("limit"), default=DEFAULT_AREA_LIMIT, maximum=MAX_AREA_RESULTS),
            parse_offset(params.get("offset")))


@spatial_view()
def area_view(req: ApiRequest, request: HttpRequest, collection_id: str, code: str) -> Answer:
    """Features in the admin area with official ``code`` (ward 19753, province 46, ...)."""
    check_names(req.params, {"level", "predicate", *_PAGING})
    found, slug = _layer_of(req, collection_id)
    limit, offset = _page(req.params)
    query = AreaQuery(layer=slug, code=code, level=parse_level(req.params),
                      predicate=req.params.get("predicate", "intersects").strip().lower(), limit=limit, offset=offset)
    return _answer(req, found, in_admin_area(query), f"area-{query.code}", f"khu vực / area {query.code}", limit,
                   offset)


@spatial_view(methods=("GET", "POST"))
def polygon_view(req: ApiRequest, request: HttpRequest, collection_id: str) -> Answer:
    """Features in a drawn polygon: ``?geom=`` (WKT or GeoJSON) or a GeoJSON body (POST)."""
    check_names(req.params, {"geom", "predicate", *_PAGING})
    found, slug = _layer_of(req, collection_id)
    limit, offset = _page(req.params)
    polygon = checked_polygon(request_geometry(request, req.params, "geom"), "geom")
    query = PolygonQuery(layer=slug, polygon=polygon, limit=limit, offset=offset,
                         predicate=req.params.get("predicate", "intersects").strip().lower())
    return _answer(req, found, in_polygon(query), "polygon", "vùng vẽ / drawn polygon", limit, offset)


@spatial_view(methods=("GET", "POST"))
def along_view(req: ApiRequest, request: HttpRequest, collection_id: str) -> Answer:
    """Features within ``buffer_m`` of a line, ordered by ``along_m`` from its first point."""
    check_names(req.params, {"line", "buffer_m", *_PAGING})
    found, slug = _layer_of(req, collection_id)
    limit, offset = _page(req.params)
    line = checked_line(request_geometry(request, req.params, "line"), "line")
    query = AlongQuery(layer=slug, line=line, buffer_m=parse_number(req.params, "buffer_m"), limit=limit,
                       offset=offset)
    return _answer(req, found, along_line(query), "along", "dọc tuyến / along line", limit, offset)


MAX_LABELS = 10_000


@spatial_view()
def labels_view(req: ApiRequest, request: HttpRequest, collection_id: str) -> Answer:
    """One label point per feature (``ST_PointOnSurface``: inside its polygon) with its name.

    Why: a map labelling 40 wards should not download their 3 MB outlines
    (the outlines come as vector tiles). Points are rounded to 6 decimals
    (~10 cm); features without a name are left out.
    """
    check_names(req.params, set())
    found, _ = _layer_of(req, collection_id)
    rows = run_sql(
        "SELECT count(*), coalesce(string_agg(json_build_object("
        "'type', 'Feature', 'id', f.external_id, 'geometry', ST_AsGeoJSON(ST_PointOnSurface(f.geom), 6)::json, "
        "'properties', json_build_object('name', f.name, 'name_en', f.properties->>'name_en'))::text, ',' "
        "ORDER BY f.name), '') FROM (SELECT * FROM twin_feature WHERE layer_id = %s AND coalesce(name, '') <> '' "
        "ORDER BY name LIMIT %s) f", [found.layer.pk, MAX_LABELS])
    count, features = rows[0]
    head = json.dumps({"type": "FeatureCollection", "numberReturned": count, "attribution": found.attribution},
                      ensure_ascii=False)
    scope = "public" if found.layer.is_public else "private"
    return 200, {"Content-Type": exports.GEOJSON, "Cache-Control": f"{scope}, max-age=60"}, \
        head[:-1] + ',"features":[' + features + "]}"


@spatial_view()
def export_view(req: ApiRequest, request: HttpRequest, collection_id: str) -> Answer:
    """Any ``/items`` query as a file: the same parameters plus ``f``."""
    return exports.export_items(req, collection_id)


# --- per ward ------------------------------------------------------------------------------------

def _numeric_property(found: Collection, params: Mapping[str, str]) -> str | None:
    name = params.get("property", "").strip()
    if not name:
        return None
    numeric = sorted(n for n, q in found.provider.fields().items() if q.type in {"number", "integer"})
    if name not in numeric:
        raise InvalidInput(f"parameter 'property': {safe_name(name)} is not a numeric property of this "
                           f"collection; numeric: {', '.join(numeric) or 'none'}")
    return name


def ward_table(found: Collection, table: WardTable, req: ApiRequest) -> dict:
    """The plain JSON table: one row per ward, then the totals (features outside every ward too)."""
    rows = [{"code": r.code, "name_vi": r.name_vi, "name_en": r.name_en, "area_km2": round(r.area_km2, 3),
             **r.values(table.value)} for r in table.rows]
    return {"collection": found.id, "property": table.value, "stats": list(table.stats), "wards": rows,
            "totals": {"features": table.total, "inWards": table.in_wards, "outside": table.outside},
            "attribution": found.attribution, "links": exports.export_links(req, ("geojson", "csv", "gpkg"))}


def ward_result(found: Collection, table: WardTable) -> exports.ResultSet:
    """The wards as features of their own layer, with the numbers as extra properties."""
    rows = list(table.rows)
    if any(r.feature_id is None for r in rows):
        raise NotSupported("some wards of this city have no map feature to draw; use f=table")
    ward_layer = Feature.objects.select_related("layer__city").get(pk=rows[0].feature_id).layer
    view = copy.copy(ward_layer)  # a named view of the wards layer, never saved
    view.slug = f"{found.id}-per-ward"
    credits = "; ".join(dict.fromkeys(a for a in (found.attribution, ward_layer.attribution) if a))
    extra = {r.feature_id: {"ward_code": r.code, "ward_name": r.name_vi, **r.values(table.value)} for r in rows}
    return exports.ResultSet(view, tuple(r.feature_id for r in rows), name=view.slug,
                             title=f"{found.title('vi')} · theo phường / per ward", attribution=credits, extra=extra,
                             color_by="count")


@spatial_view()
def per_ward_view(req: ApiRequest, request: HttpRequest, collection_id: str) -> Answer:
    """Count (and ``stats`` of ``property``) per ward: choropleth GeoJSON, or ``f=table``."""
    check_names(req.params, {"property", "stats"})
    found, slug = _layer_of(req, collection_id)
    fmt = exports.parse_format(req.params.get("f"), ("json", "table", *exports.FILE_FORMATS))
    table = per_ward(WardQuery(layer=slug, value=_numeric_property(found, req.params), stats=parse_stats(req.params)))
    if fmt == "table":
        return json_answer(ward_table(found, table, req))
    if not table.rows:
        raise InvalidInput(f"the city of collection {found.id!r} has no wards loaded")
    members = {"totals": {"features": table.total, "inWards": table.in_wards, "outside": table.outside},
               "property": table.value, "stats": list(table.stats)}
    links = [*exports.export_links(req, ("geojson", "csv", "gpkg", "kepler")),
             link(req.with_params(f="table"), "alternate", JSON, "Table")]
    return exports.export_response(ward_result(found, table), fmt, links, members)

