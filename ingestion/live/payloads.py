# SPDX-License-Identifier: AGPL-3.0-or-later
"""The live messages: one JSON shape on MQTT and on the WebSocket (``docs/live.md``).

Built from the *committed* rows, so a message always shows the state that is
in the database, whatever the order in which concurrent writers commit.
Payloads carry no personal data: never the event's free-form ``payload``
(a citizen report keeps its reporter there) nor feature ``properties``;
only the fields listed here.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from django.conf import settings
from django.db import connection

from twin.geojson import geometry_dict
from twin.json_text import compact_json
from twin.models import AdminArea, City, GeoEvent, last_seen_sql

logger = logging.getLogger(__name__)

EVENT_OPS = frozenset({"created", "updated", "transition"})

_FEATURES_SQL = """
SELECT f.id, f.external_id, l.slug, c.slug, f.status, {last_seen}, ST_AsGeoJSON(f.geom, 7)
  FROM twin_feature f
  JOIN twin_layer l ON l.id = f.layer_id
  LEFT JOIN twin_city c ON c.id = l.city_id
 WHERE f.id = ANY(%s)
 ORDER BY f.id
""".format(last_seen=last_seen_sql("f"))


def dumps(message: dict[str, Any]) -> str:
    """Compact JSON, Vietnamese left readable (the map shows these strings); through orjson (twin.json_text)."""
    return compact_json(message)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _ward(area: AdminArea | None) -> dict[str, Any] | None:
    if area is None:
        return None
    return {"code": area.code, "name_vi": area.name_vi, "name_en": area.name_en}


# Only what the message shows: a ward's or a city's polygon weighs far more than the event.
_EVENT_FIELDS = ("id", "kind", "category", "severity", "status", "title", "geom", "occurred_at", "updated_at",
                 "source_feature_id", "layer__slug", "layer__city__slug", "source_feature__layer__city__slug",
                 "ward__code", "ward__name_vi", "ward__name_en", "agency__code", "agency__name_vi")
CITY_CACHE_S = 300.0


def load_event(event_id: int) -> GeoEvent | None:
    return (GeoEvent.objects.select_related("layer__city", "source_feature__layer__city", "ward", "agency")
            .only(*_EVENT_FIELDS).filter(pk=event_id).first())


class _Cities:
    """City extents, prepared, refreshed every few minutes (cities are loaded, not edited live)."""

    lock = threading.Lock()
    loaded_at = -CITY_CACHE_S
    extents: list[tuple[str, Any]] = []


def _city_at(geom) -> str | None:
    with _Cities.lock:
        if time.monotonic() - _Cities.loaded_at >= CITY_CACHE_S:
            _Cities.extents = [(c.slug, c.extent.prepared) for c in City.objects.only("slug", "extent")]
            _Cities.loaded_at = time.monotonic()
        extents = _Cities.extents
    return next((slug for slug, extent in extents if extent.intersects(geom)), None)


def reset_cities() -> None:
    with _Cities.lock:
        _Cities.loaded_at, _Cities.extents = -CITY_CACHE_S, []


def event_city(event: GeoEvent) -> str:
    """The city an event belongs to: its layer's, its source feature's, the one whose extent holds it."""
    source_layer = event.source_feature.layer if event.source_feature else None
    for layer in (event.layer, source_layer):
        if layer is not None and layer.city is not None:
            return layer.city.slug
    return _city_at(event.geom) or settings.DEFAULT_CITY


def event_message(event: GeoEvent, op: str, city: str) -> dict[str, Any]:
    """``{"type": "event", "op", "city", "event": {...}, "published_at"}``."""
    if op not in EVENT_OPS:
        raise ValueError(f"unknown event op {op!r}")
    body = {
        "id": event.pk, "kind": event.kind, "category": event.category, "severity": event.severity,
        "status": event.status, "title": event.title, "geometry": geometry_dict(event.geom),
        "ward": _ward(event.ward),
        "agency": {"code": event.agency.code, "name_vi": event.agency.name_vi} if event.agency else None,
        "occurred_at": _iso(event.occurred_at), "updated_at": _iso(event.updated_at),
        "layer": event.layer.slug if event.layer else None, "source_feature": event.source_feature_id,
    }
    return {"type": "event", "op": op, "city": city, "event": body, "published_at": now_iso()}


@dataclass(frozen=True, slots=True)
class FeatureState:
    """What the map needs to redraw one feature."""

    fid: int
    external_id: str
    layer: str
    city: str
    status: str
    last_seen: datetime | None
    geometry: dict[str, Any]

    def message(self) -> dict[str, Any]:
        """``{"type": "feature", "layer", "id" (the API id: external id), "fid", "status", ...}``."""
        return {"type": "feature", "city": self.city, "layer": self.layer, "id": self.external_id, "fid": self.fid,
                "status": self.status, "last_seen": _iso(self.last_seen), "geometry": self.geometry,
                "published_at": now_iso()}


def feature_states(feature_ids: Iterable[int]) -> list[FeatureState]:
    """The committed state of these features, one query."""
    ids = sorted({int(i) for i in feature_ids})
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_FEATURES_SQL, [ids])
        rows = cursor.fetchall()
    return [FeatureState(fid=fid, external_id=xid, layer=layer, city=city or settings.DEFAULT_CITY, status=status,
                         last_seen=seen, geometry=json.loads(geojson))
            for fid, xid, layer, city, status, seen, geojson in rows]


__all__ = ["EVENT_OPS", "FeatureState", "dumps", "event_city", "event_message", "feature_states", "load_event",
           "now_iso", "reset_cities"]
