# SPDX-License-Identifier: AGPL-3.0-or-later
"""Views of the layers API: thin wrappers around the resources of :mod:`layers.ogc`.

Each view authenticates (session or bearer token, :mod:`twin.auth`),
negotiates format and language, calls a resource function and turns its
``(status, headers, body)`` into a response. Errors are caught once here:
a :class:`~twin.errors.TwinError` becomes its status with the OGC exception
body ``{"code", "description"}``; anything else is logged and answered 500
with a generic message (never SQL, never a traceback).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt

from layers import ogc, ogc_items, openapi
from layers.collections import readable_collections
from layers.errors import InvalidInput
from layers.labels import choose_language
from layers.query import safe_name
from twin.auth import MethodNotAllowed, authenticate_request, error_response
from twin.errors import TwinError

logger = logging.getLogger(__name__)

FORMATS = {"json": "json", "geojson": "json", "application/json": "json", "application/geo+json": "json",
           "html": "html", "text/html": "html"}
MAP_PATH = "/map/"  # the 3D operations map (map_ui), where browsers asking for the site root go
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Content-Crs"}


def _format(request: HttpRequest, raw: str | None) -> str:
    """``f`` wins; else HTML when the Accept header prefers it (browsers), else JSON (§7.8)."""
    if raw is not None:
        fmt = FORMATS.get(raw.strip().lower())
        if fmt is None:
            raise InvalidInput("parameter 'f' must be json or html")
        return fmt
    accept = request.headers.get("Accept", "")
    html_at, json_at = accept.find("text/html"), max(accept.find("json"), -1)
    return "html" if html_at >= 0 and (json_at < 0 or html_at < json_at) else "json"


def api_request(request: HttpRequest) -> ogc.ApiRequest:
    """The parts of ``request`` the resources need; repeated parameters are refused (ambiguous)."""
    params: dict[str, str] = {}
    for key, values in request.GET.lists():
        if len(values) > 1:
            raise InvalidInput(f"parameter {safe_name(key)} is given more than once")
        params[key] = values[0]
    return ogc.ApiRequest(
        base=f"{request.scheme}://{request.get_host()}", path=request.path, params=params, user=request.user,
        fmt=_format(request, params.get("f")),
        lang=choose_language(params.get("lang"), request.headers.get("Accept-Language", "")),
    )


def _respond(answer: ogc.Answer) -> HttpResponse:
    status, headers, body = answer
    response = HttpResponse(body, status=status, content_type=headers.pop("Content-Type"))
    for name, value in {**CORS, **headers}.items():
        response[name] = value
    response["Vary"] = "Accept, Accept-Language, Authorization, Cookie"
    return response


def ogc_view(resource: Callable[..., ogc.Answer]) -> Callable[..., HttpResponse]:
    """Wrap a resource function as a GET/HEAD view that answers OGC exceptions on errors."""

    @csrf_exempt
    @wraps(resource)
    def view(request: HttpRequest, **kwargs) -> HttpResponse:
        try:
            if request.method not in {"GET", "HEAD"}:
                raise MethodNotAllowed(f"{request.method} is not allowed here; use GET")
            authenticate_request(request)
            return _respond(resource(api_request(request), **kwargs))
        except TwinError as exc:
            logger.info("%s %s -> %s %s: %s", request.method, request.path, int(exc.status), exc.code, exc.message)
            response = error_response(exc, request)
            if isinstance(exc, MethodNotAllowed):
                response["Allow"] = "GET, HEAD"
            for name, value in CORS.items():
                response[name] = value
            return response
        except Exception:  # the client gets a code, the log gets the traceback
            logger.exception("%s %s failed", request.method, request.path)
            response = error_response(TwinError("Internal error; it has been logged."))
            response.content = b'{"code": "NoApplicableCode", "description": "Internal error; it has been logged."}'
            return response

    return view


def _api_document(req: ogc.ApiRequest) -> ogc.Answer:
    document = openapi.document(req.base, readable_collections(req.user))
    if req.fmt == "html":
        return ogc.html_answer(req, "api.html", {"doc": document, "parameters": openapi.PARAMETERS})
    return ogc.json_answer(document, ogc.OPENAPI_JSON)


_landing = ogc_view(ogc.landing)


@csrf_exempt  # as every ogc_view: methods are checked (405) inside
def landing(request: HttpRequest) -> HttpResponse:
    """The site root: a browser asking for ``/`` itself gets the operations map; everyone else the OGC landing.

    Only a bare ``GET /`` whose Accept header prefers HTML is sent to the map
    (``map_ui``, when installed): OGC clients ask for JSON, and the landing
    page stays reachable in a browser as ``/?f=html`` (its own links carry
    parameters, so they never bounce to the map).
    """
    if request.method == "GET" and not request.GET and _format(request, None) == "html":
        try:
            resolve(MAP_PATH)
        except Resolver404:
            pass
        else:
            return HttpResponseRedirect(MAP_PATH)
    return _landing(request)
conformance = ogc_view(ogc.conformance)
api_definition = ogc_view(_api_document)
collections = ogc_view(ogc.collections)
collection = ogc_view(ogc.collection)
queryables = ogc_view(ogc.queryables)
_items = ogc_view(ogc_items.items)
item = ogc_view(ogc_items.item)

#: ``f`` values of ``/items`` that download the whole query as a file (layers/exports.py)
ITEMS_FILE_FORMATS = ("gpkg", "csv", "kepler")


@csrf_exempt  # as every ogc_view: methods are checked (405) inside
def items(request: HttpRequest, **kwargs) -> HttpResponse:
    """``/items``; with ``f=gpkg|csv|kepler`` the same query as a file (all matches, not one page)."""
    if request.GET.get("f", "").strip().lower() in ITEMS_FILE_FORMATS:
        from layers import spatial_api  # the exports' view; imported here so the OGC core stands alone

        return spatial_api.export_view(request, **kwargs)
    return _items(request, **kwargs)
