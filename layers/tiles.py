# SPDX-License-Identifier: AGPL-3.0-or-later
"""Vector tiles of every layer: ``/tiles/{layer}`` (TileJSON 3.0.0) and
``/tiles/{layer}/{z}/{x}/{y}.mvt`` (Mapbox Vector Tile 2.1), as Martin names them.

The views are thin: parse and validate the address (a 400 with an OGC
exception body says what is wrong), authenticate (layers/access.py: a layer
the caller may not read is a 404), then answer from the ETag (304), the
tile cache, or :func:`layers.tilerender.render_tile`. See docs/tiles.md.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import re
from collections.abc import Callable
from functools import wraps

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt

from layers.access import readable_layers
from layers.tilecache import TileKey, cached_tile, etag_matches, layer_with_version, store_tile
from layers.tileconfig import TileConfig, tile_config
from layers.tilefields import vector_layer_fields
from layers.tileoverview import Overview, current_overview, is_point_layer
from layers.tilerender import Tile, render
from twin.auth import MethodNotAllowed, authenticate_request, error_response
from twin.errors import InvalidInput, NotFound, TwinError
from twin.models import Layer

logger = logging.getLogger(__name__)

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"  # no entry in Python's mimetypes
TILE_FORMATS = frozenset({"mvt", "pbf"})
_INDEX = re.compile(r"^[0-9]{1,8}$")  # 2^24 has 8 digits; signs, spaces and decimals are refused
_ALLOWED = ("GET", "HEAD")


def tile_endpoint(view: Callable) -> Callable:
    """GET/HEAD only; every :class:`TwinError` becomes its status + OGC exception JSON, never a 500 page."""

    # CSRF-exempt: nothing here writes, and a POST must get the 405 below, not a CSRF page.
    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            if request.method not in _ALLOWED:
                raise MethodNotAllowed(f"{request.method} is not allowed here; use GET or HEAD")
            response = view(request, *args, **kwargs)
        except TwinError as exc:
            logger.info("%s %s -> %s %s: %s", request.method, request.path, int(exc.status), exc.code, exc.message)
            response = error_response(exc, request)
            response["Cache-Control"] = "no-store"
            if isinstance(exc, MethodNotAllowed):
                response["Allow"] = ", ".join(_ALLOWED)
        except Exception:  # the client gets a code, the log gets the traceback
            logger.exception("%s %s failed", request.method, request.path)
            response = error_response(TwinError("Internal error; it has been logged."))
        if request.method == "HEAD":
            response.content = b""
        return response

    return wrapper


def parse_tile(z: str, x: str, y_ext: str, cfg: TileConfig) -> Tile:
    """Validate ``z``, ``x`` and ``y.ext`` from the URL; :class:`InvalidInput` says which part is wrong."""
    y, dot, ext = y_ext.rpartition(".")
    if not dot:
        y, ext = y_ext, ""
    if ext.lower() not in TILE_FORMATS:
        shown = f"'.{ext}'" if dot else "no extension"
        raise InvalidInput(f"tile format {shown} is not supported: use .mvt or .pbf "
                           "(/tiles/{layer}/{z}/{x}/{y}.mvt)")
    zoom = _index("zoom level z", z)
    if zoom > cfg.max_zoom:
        raise InvalidInput(f"zoom level z={zoom} is out of range: 0 to {cfg.max_zoom}")
    top = (1 << zoom) - 1
    column, row = _index("tile column x", x), _index("tile row y", y)
    if column > top:
        raise InvalidInput(f"tile column x={column} is out of range at zoom {zoom}: 0 to {top}")
    if row > top:
        raise InvalidInput(f"tile row y={row} is out of range at zoom {zoom}: 0 to {top}")
    return Tile(zoom, column, row)


def _index(what: str, text: str) -> int:
    if not _INDEX.match(text):
        raise InvalidInput(f"{what} must be a non-negative integer, not {text[:20]!r}")
    return int(text)


def _cache_control(layer: Layer, cfg: TileConfig) -> dict[str, str]:
    # Private layers must not land in shared caches, and their answer depends on who asks.
    if layer.is_public:
        return {"Cache-Control": f"public, max-age={cfg.max_age}", "Vary": "Accept-Encoding"}
    return {"Cache-Control": f"private, max-age={cfg.max_age}", "Vary": "Accept-Encoding, Authorization, Cookie"}


def _accepts_gzip(request: HttpRequest) -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "").lower()


@tile_endpoint
def tile(request: HttpRequest, layer: str, z: str, x: str, y: str) -> HttpResponse:
    """One MVT tile: 304 on a matching ETag, else the cached or freshly rendered tile; 204 when empty."""
    cfg = tile_config()
    address = parse_tile(z, x, y, cfg)
    found = layer_with_version(authenticate_request(request), layer, cfg=cfg)
    key = TileKey(found.pk, found.created_at, found.data_version, address.z, address.x, address.y)
    headers = {"ETag": key.etag(cfg), **_cache_control(found, cfg)}
    if etag_matches(request.headers.get("If-None-Match", ""), headers["ETag"]):
        return HttpResponse(status=304, headers=headers)
    stored = cached_tile(key, cfg)
    headers["X-Tile-Cache"] = "hit" if stored is not None else "miss"
    if stored is None:
        rendered = render(found, address, cfg)
        # Kept gzip-compressed: MVT shrinks 3-5x, so the cache holds more and most clients take it as is.
        stored = gzip.compress(rendered.body, compresslevel=1, mtime=0) if rendered.body else b""
        if rendered.provisional:  # counts one write behind while the overview is rebuilt: keep it nowhere
            headers = {"Cache-Control": "no-store", "X-Tile-Cache": "provisional"}
        else:
            store_tile(key, cfg, stored)
    if not stored:
        return HttpResponse(status=204, headers=headers)  # an empty tile; MapLibre and deck.gl draw nothing
    if _accepts_gzip(request):
        return HttpResponse(stored, content_type=MVT_MEDIA_TYPE, headers={**headers, "Content-Encoding": "gzip"})
    return HttpResponse(gzip.decompress(stored), content_type=MVT_MEDIA_TYPE, headers=headers)


@tile_endpoint
def tilejson(request: HttpRequest, layer: str) -> HttpResponse:
    """TileJSON 3.0.0 of a layer: the tile URL template, zooms, bounds, centre and fields."""
    cfg = tile_config()
    found = layer_with_version(authenticate_request(request), layer, with_city=True, cfg=cfg)
    with transaction.atomic(), connection.cursor() as cursor:
        overview = current_overview(cursor, found, cfg)
    document = tilejson_document(request, found, overview, cfg)
    body = json.dumps(document, ensure_ascii=False).encode()
    headers = {"ETag": 'W/"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"', **_cache_control(found, cfg)}
    if etag_matches(request.headers.get("If-None-Match", ""), headers["ETag"]):
        return HttpResponse(status=304, headers=headers)
    return HttpResponse(body, content_type="application/json", headers=headers)


def tile_url_template(request: HttpRequest, slug: str) -> str:
    # Built by hand: reverse() would percent-encode the braces of {z}/{x}/{y}.
    return request.build_absolute_uri(reverse("tiles-tilejson", args=[slug])) + "/{z}/{x}/{y}.mvt"


def tilejson_document(request: HttpRequest, layer: Layer, overview: Overview, cfg: TileConfig) -> dict:
    """The TileJSON 3.0.0 object (https://github.com/mapbox/tilejson-spec/tree/master/3.0.0)."""
    bounds = _bounds(layer, overview)
    maxzoom = min(cfg.tilejson_maxzoom, cfg.max_zoom)
    titles = " / ".join(t for t in (layer.title_vi, layer.title_en) if t)
    return {
        "tilejson": "3.0.0",
        "name": layer.title_vi,
        "name_en": layer.title_en,
        "description": f"{titles}. {layer.description}".strip() if layer.description else titles,
        # MapLibre renders attribution as HTML: escape it, it is data.
        "attribution": escape(layer.attribution),
        "scheme": "xyz",
        "tiles": [tile_url_template(request, layer.slug)],
        "minzoom": 0,
        "maxzoom": maxzoom,
        "bounds": list(bounds),
        "center": _center(layer, bounds, maxzoom),
        "vector_layers": [{
            "id": layer.slug,
            "description": titles,
            "minzoom": 0,
            "maxzoom": maxzoom,
            "fields": vector_layer_fields(layer.kind, clusters=is_point_layer(layer)),
        }],
        "features": overview.features,
        "geometry_type": layer.geometry_type,
    }


def _bounds(layer: Layer, overview: Overview) -> tuple[float, float, float, float]:
    if overview.bounds is not None:
        return tuple(round(v, 6) for v in overview.bounds)
    if layer.city is not None:  # an empty layer: the city it belongs to
        return tuple(round(v, 6) for v in layer.city.extent.extent)
    return (-180.0, -85.051129, 180.0, 85.051129)


def _center(layer: Layer, bounds: tuple[float, float, float, float], maxzoom: int) -> list[float]:
    west, south, east, north = bounds
    if layer.city is not None and layer.city.center is not None:
        lon, lat = layer.city.center.x, layer.city.center.y
        if west <= lon <= east and south <= lat <= north:
            return [round(lon, 6), round(lat, 6), min(maxzoom, round(layer.city.default_zoom))]
    span = max(east - west, north - south, 1e-6)
    zoom = max(0, min(maxzoom, int(math.log2(360 / span))))
    return [round((west + east) / 2, 6), round((south + north) / 2, 6), zoom]


@tile_endpoint
def tile_index(request: HttpRequest) -> HttpResponse:
    """The layers the caller may read, each with its TileJSON URL."""
    layers = readable_layers(authenticate_request(request)).order_by("slug")
    items = [{"id": layer.slug, "title": layer.title_vi, "title_en": layer.title_en,
              "tilejson": request.build_absolute_uri(reverse("tiles-tilejson", args=[layer.slug]))}
             for layer in layers]
    return JsonResponse({"tilesets": items}, json_dumps_params={"ensure_ascii": False},
                        headers={"Cache-Control": "no-cache"})


@tile_endpoint
def bad_tile_path(request: HttpRequest, layer: str, rest: str) -> HttpResponse:
    """Anything else under ``/tiles/{layer}/``: say what the URL should look like."""
    raise NotFound(f"no such tile resource; tiles are /tiles/{{layer}}/{{z}}/{{x}}/{{y}}.mvt, "
                   f"not /tiles/{layer[:60]}/{rest[:60]}")
