# SPDX-License-Identifier: AGPL-3.0-or-later
"""``GET /collections/{id}/latest``: each feature's latest observed values as of a moment.

Why: the map colours sensors by their latest reading. At "now" the page gets
those values from ``/ws/live``; in a replay (the time slider at a past
moment) it needs them as they were then, and the observation collection
could only give every reading of a window. One indexed query answers it: a
``LATERAL`` probe per feature on ``(feature_id, time)`` (newest first,
``LIMIT 1``) in the monthly partitions the look-back window keeps; nothing
scans the table (docs/map.md, "Replay").

Parameters: ``datetime`` (an RFC 3339 instant; default now), ``limit``
(1-10000, default 5000) and ``offset`` over the layer's features (by id).
Each item says ``offline`` when the device had an ``offline`` event open at
that moment (the offline rule's own decision, so its per-device windows
hold). Access is the collection's: a layer the caller may not read is a 404.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django.http import HttpRequest

from layers import exports
from layers.errors import InvalidInput, NotSupported
from layers.ogc import JSON, Answer, ApiRequest, json_answer, link
from layers.providers.postgis import run_sql
from layers.query import parse_datetime, parse_limit, parse_offset
from layers import registry
from layers.collections import readable_collection
from layers.spatial_api import check_names, spatial_view

LOOK_BACK = timedelta(days=7)      # a reading older than this at the moment counts as none
DEFAULT_LIMIT, MAX_LIMIT = 5000, 10_000
CLOSED = ("resolved", "dismissed")

LATEST_SQL = """
SELECT ft.external_id, o.time, o.values,
       EXISTS (SELECT 1 FROM twin_geoevent e
               WHERE e.source_feature_id = ft.id AND e.kind = 'offline' AND e.occurred_at <= %(at)s
                 AND NOT EXISTS (SELECT 1 FROM twin_geoeventtransition t
                                 WHERE t.event_id = e.id AND t.at <= %(at)s AND t.to_status = ANY(%(closed)s)))
FROM twin_feature ft
LEFT JOIN LATERAL (SELECT ob.time, ob.values FROM twin_observation ob
                   WHERE ob.feature_id = ft.id AND ob.time <= %(at)s AND ob.time > %(since)s
                   ORDER BY ob.time DESC LIMIT 1) o ON true
WHERE ft.layer_id = %(layer)s
ORDER BY ft.id LIMIT %(limit)s OFFSET %(offset)s
"""


def parse_moment(raw: str | None) -> datetime:
    """``datetime``: one instant (an interval has no single "latest"); default now."""
    interval = parse_datetime(raw)
    if interval is None:
        return datetime.now(UTC)
    if interval.start is None or interval.end is None or (interval.end - interval.start) > timedelta(seconds=1):
        raise InvalidInput("parameter 'datetime' must be one instant here, such as 2026-11-24T08:00:00Z")
    return interval.start


def latest_readings(layer_id: int, at: datetime, limit: int, offset: int) -> list[tuple]:
    """``(external_id, time, values, offline)`` per feature of the layer, ``time``/``values`` None without one."""
    return run_sql(LATEST_SQL, {"at": at, "since": at - LOOK_BACK, "closed": list(CLOSED), "layer": layer_id,
                                "limit": limit + 1, "offset": offset})


@spatial_view()
def latest_view(req: ApiRequest, request: HttpRequest, collection_id: str) -> Answer:
    """The readings document (``{"datetime", "numberReturned", "readings": [...], "links"}``)."""
    check_names(req.params, {"datetime", "limit", "offset"})
    found = readable_collection(req.user, collection_id)
    layer = exports.feature_layer(found)
    if not registry.kind_spec(layer.kind).observations:
        raise NotSupported(f"collection {collection_id!r} has no observations (layer kind {layer.kind!r})")
    at = parse_moment(req.params.get("datetime"))
    limit = parse_limit(req.params.get("limit"), default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
    offset = parse_offset(req.params.get("offset"))
    rows = latest_readings(layer.pk, at, limit, offset)
    items = [{"feature": fid, "time": time.isoformat() if time else None, "offline": offline,
              "values": json.loads(values) if isinstance(values, str) else values}   # jsonb comes as text
             for fid, time, values, offline in rows[:limit]]
    links = [link(req.with_params(), "self", JSON)]
    if len(rows) > limit:
        links.append(link(req.with_params(offset=offset + limit, limit=limit), "next", JSON))
    body = {"datetime": at.isoformat().replace("+00:00", "Z"), "numberReturned": len(items), "readings": items,
            "links": links}
    scope = "public" if layer.is_public else "private"
    status, headers, text = json_answer(body)
    return status, {**headers, "Cache-Control": f"{scope}, max-age=5"}, text
