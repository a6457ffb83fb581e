# SPDX-License-Identifier: AGPL-3.0-or-later
"""The small JSON API of the spatial core: where is this, what is near, events.

Each view parses its parameters into a typed query first (one small parser
per parameter), checks the caller's role, then calls a read helper or a
service. ``/collections`` and ``/tiles`` are reserved for the OGC layers API.

- ``GET  /api/resolve?lon=&lat=&category=``     public: ward, province, agencies
- ``GET  /api/nearest?lon=&lat=&limit=&layers=&max_distance_m=``
- ``GET  /api/within?lon=&lat=&radius_m=&layers=&limit=``
- ``GET  /api/events?status=&category=&since=&until=&as_of=&limit=&offset=`` READ_EVENTS
- ``GET  /api/events/<id>``                                READ_EVENTS
- ``POST /api/events/<id>/transition`` ``{"status", "note"}`` HANDLE_EVENTS
"""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.db.models import OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, JsonResponse
from django.utils.dateparse import parse_datetime

from twin.auth import check_capability, json_api, requires
from twin.errors import InvalidInput, NotFound
from twin.geojson import geometry_dict
from twin.params import parse_integer, parse_number
from twin.models import AdminArea, Agency, EventStatus, Feature, GeoEvent, GeoEventTransition, Layer
from twin.roles import Capability, has_capability
from twin.services import resolve_point, transition_event
from twin.spatial import MAX_RESULTS, NearestQuery, WithinQuery, nearest, within

logger = logging.getLogger(__name__)

GEOJSON = "application/geo+json"
MAX_NOTE_CHARS = 2000
DEFAULT_EVENT_PAGE = 100
# Defence in depth: producers must not put a citizen reporter's identity in an
# event payload at all; should one slip in, these keys never leave the system.
REDACTED_PAYLOAD_PREFIXES = ("reporter", "citizen_", "phone", "email")


# --- parameter parsers (each raises InvalidInput -> 400 InvalidParameterValue) ---

def _slugs(request: HttpRequest, name: str) -> tuple[str, ...]:
    raw = request.GET.get(name, "")
    slugs = tuple(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    if len(slugs) > 100:
        raise InvalidInput(f"parameter {name!r} lists more than 100 values")
    return slugs


def _visible_layers(user, requested: tuple[str, ...]) -> tuple[str, ...] | None:
    """The layer slugs this user may query; ``()`` means every layer, ``None`` means none.

    Users without READ_PRIVATE_LAYERS see public layers only. Asking for a
    layer that is not public is a 401/403 for them whether or not it exists,
    so private layer names cannot be probed.
    """
    if has_capability(user, Capability.READ_PRIVATE_LAYERS):
        unknown = set(requested) - set(Layer.objects.filter(slug__in=requested).values_list("slug", flat=True))
        if unknown:
            raise InvalidInput(f"unknown layer(s): {', '.join(sorted(unknown))}")
        return requested
    public = set(Layer.objects.filter(is_public=True).values_list("slug", flat=True))
    if not requested:
        return tuple(sorted(public)) or None
    if set(requested) - public:
        check_capability(user, Capability.READ_PRIVATE_LAYERS)
    return requested


# --- serialisers ---

def _area(area: AdminArea | None) -> dict[str, Any] | None:
    if area is None:
        return None
    return {"code": area.code, "level": area.level, "name_vi": area.name_vi, "name_en": area.name_en,
            "full_name_vi": area.full_name_vi, "full_name_en": area.full_name_en}


def _agency(agency: Agency) -> dict[str, Any]:
    return {"code": agency.code, "name_vi": agency.name_vi, "name_en": agency.name_en,
            "categories": list(agency.categories), "contact": agency.contact,
            "location": list(agency.location.coords) if agency.location else None}


def _feature(feature: Feature, distance_m: float) -> dict[str, Any]:
    properties = {**feature.properties, "layer": feature.layer.slug, "external_id": feature.external_id,
                  "name": feature.name, "status": feature.status, "height_m": feature.height_m,
                  "distance_m": round(distance_m, 2)}
    return {"type": "Feature", "id": feature.pk, "geometry": geometry_dict(feature.geom),
            "properties": properties}


def _payload(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if not str(k).lower().startswith(REDACTED_PAYLOAD_PREFIXES)}


def _event(event: GeoEvent, *, history: bool = False) -> dict[str, Any]:
    properties = {
        "kind": event.kind, "category": event.category, "severity": event.severity, "title": event.title,
        "status": event.status, "occurred_at": event.occurred_at.isoformat(),
        "updated_at": event.updated_at.isoformat(), "layer": event.layer.slug if event.layer else None,
        "source_feature": event.source_feature_id, "ward": _area(event.ward),
        "agency": {"code": event.agency.code, "name_vi": event.agency.name_vi} if event.agency else None,
        "payload": _payload(event.payload),
    }
    if history:
        properties["history"] = [
            {"from": t.from_status, "to": t.to_status, "actor": t.actor_label, "note": t.note,
             "at": t.at.isoformat()} for t in event.history.all()
        ]
    return {"type": "Feature", "id": event.pk, "geometry": geometry_dict(event.geom), "properties": properties}


def _collection(request: HttpRequest, features: list[dict], next_params: dict | None = None) -> JsonResponse:
    links = [{"rel": "self", "type": GEOJSON, "href": request.build_absolute_uri()}]
    if next_params is not None:
        links.append({"rel": "next", "type": GEOJSON,
                      "href": request.build_absolute_uri(f"{request.path}?{urlencode(next_params)}")})
    body = {"type": "FeatureCollection", "features": features, "numberReturned": len(features), "links": links}
    return JsonResponse(body, content_type=GEOJSON, json_dumps_params={"ensure_ascii": False})


# --- views ---

@json_api
def resolve(request: HttpRequest) -> JsonResponse:
    """Public: the ward and province at a point and the agencies to call there."""
    lon, lat = parse_number(request.GET, "lon"), parse_number(request.GET, "lat")
    category = request.GET.get("category", "").strip()[:60] or None
    found = resolve_point(lon, lat, category)
    body = {"lon": lon, "lat": lat, "category": category, "ward": _area(found.ward),
            "province": _area(found.province), "agencies": [_agency(a) for a in found.agencies]}
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False})


@json_api
def nearest_features(request: HttpRequest) -> JsonResponse:
    """The closest features to a point, with ``distance_m``; private layers need a role."""
    query = NearestQuery(lon=parse_number(request.GET, "lon"), lat=parse_number(request.GET, "lat"),
                         limit=parse_integer(request.GET, "limit", 10), layers=_slugs(request, "layers"),
                         max_distance_m=parse_number(request.GET, "max_distance_m", required=False))
    layers = _visible_layers(request.user, query.layers)
    if layers is None:
        return _collection(request, [])
    rows = nearest(NearestQuery(lon=query.lon, lat=query.lat, limit=query.limit, layers=layers,
                                max_distance_m=query.max_distance_m))
    return _collection(request, [_feature(f, d) for f, d in rows])


@json_api
def within_features(request: HttpRequest) -> JsonResponse:
    """Features within ``radius_m`` metres of a point, nearest first."""
    query = WithinQuery(lon=parse_number(request.GET, "lon"), lat=parse_number(request.GET, "lat"),
                        radius_m=parse_number(request.GET, "radius_m"), layers=_slugs(request, "layers"),
                        limit=parse_integer(request.GET, "limit", MAX_RESULTS))
    layers = _visible_layers(request.user, query.layers)
    if layers is None:
        return _collection(request, [])
    rows = within(WithinQuery(lon=query.lon, lat=query.lat, radius_m=query.radius_m, layers=layers,
                              limit=query.limit))
    return _collection(request, [_feature(f, d) for f, d in rows])


@json_api
@requires(Capability.READ_EVENTS)
def events(request: HttpRequest) -> JsonResponse:
    """Events, newest first, filtered by ``status`` (comma list) and ``category``."""
    statuses = _slugs(request, "status")
    unknown = set(statuses) - set(EventStatus.values)
    if unknown:
        raise InvalidInput(f"unknown status(es): {', '.join(sorted(unknown))}; one of {', '.join(EventStatus.values)}")
    limit, offset = parse_integer(request.GET, "limit", DEFAULT_EVENT_PAGE), parse_integer(request.GET, "offset", 0)
    if not 1 <= limit <= MAX_RESULTS:
        raise InvalidInput(f"limit must be between 1 and {MAX_RESULTS}")
    if offset < 0:
        raise InvalidInput("offset must not be negative")
    query = GeoEvent.objects.select_related("layer", "ward", "agency").order_by("-occurred_at", "-id")
    if statuses:
        query = query.filter(status__in=statuses)
    if category := request.GET.get("category", "").strip():
        query = query.filter(category=category)
    query, as_of = _in_time(query, request)
    page = list(query[offset:offset + limit + 1])
    next_params = None
    if len(page) > limit:
        next_params = {**request.GET.dict(), "limit": limit, "offset": offset + limit}
    features = [_event(e) for e in page[:limit]]
    if as_of is not None:
        for feature, event in zip(features, page):
            feature["properties"]["status_as_of"] = event.status_as_of
    return _collection(request, features, next_params)


CLOSED_STATUSES = (EventStatus.RESOLVED, EventStatus.DISMISSED)


def _moment(request: HttpRequest, name: str) -> datetime | None:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise InvalidInput(f"parameter {name!r} must be an ISO 8601 date-time such as 2026-11-24T08:00:00Z")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _in_time(query, request: HttpRequest):
    """``since``/``until``: events active at some moment of the window; ``as_of``: as they stood then.

    For the map's replay: an event is active from ``occurred_at`` until its
    last change if it is closed, or until now if it is open. ``as_of`` keeps
    the events that had occurred by then and gives each ``status_as_of``,
    the status its history had reached at that moment.
    """
    since, until, as_of = _moment(request, "since"), _moment(request, "until"), _moment(request, "as_of")
    if since and until and since > until:
        raise InvalidInput("parameter 'since' must not be later than 'until'")
    if until is not None:
        query = query.filter(occurred_at__lte=until)
    if since is not None:
        query = query.filter(Q(updated_at__gte=since) | ~Q(status__in=CLOSED_STATUSES))
    if as_of is not None:
        last = GeoEventTransition.objects.filter(event=OuterRef("pk"), at__lte=as_of).order_by("-at", "-id")
        query = query.filter(occurred_at__lte=as_of).annotate(
            status_as_of=Coalesce(Subquery(last.values("to_status")[:1]), Value(EventStatus.NEW.value)))
    return query, as_of


def _get_event(event_id: int) -> GeoEvent:
    event = GeoEvent.objects.select_related("layer", "ward", "agency").filter(pk=event_id).first()
    if event is None:
        raise NotFound(f"no event {event_id}")
    return event


@json_api
@requires(Capability.READ_EVENTS)
def event_detail(request: HttpRequest, event_id: int) -> JsonResponse:
    return JsonResponse(_event(_get_event(event_id), history=True), content_type=GEOJSON,
                        json_dumps_params={"ensure_ascii": False})


def _transition_body(request: HttpRequest) -> tuple[str, str]:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    status, note = body.get("status"), body.get("note", "")
    if not isinstance(status, str) or not status:
        raise InvalidInput("'status' is required: one of " + ", ".join(EventStatus.values))
    if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
        raise InvalidInput(f"'note' must be text of at most {MAX_NOTE_CHARS} characters")
    return status, note


@json_api(methods=("POST",))
@requires(Capability.HANDLE_EVENTS)
def event_transition(request: HttpRequest, event_id: int) -> JsonResponse:
    """Move an event along its lifecycle; the history records who did it."""
    status, note = _transition_body(request)
    transition_event(event_id, status, actor=request.user, note=note)
    return JsonResponse(_event(_get_event(event_id), history=True), content_type=GEOJSON,
                        json_dumps_params={"ensure_ascii": False})
