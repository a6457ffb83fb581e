# SPDX-License-Identifier: AGPL-3.0-or-later
"""Which live message goes to which client: viewport, layers, events (pure; no Django).

The hub parses each MQTT message once into a :class:`LiveMessage` (geometry
bounds computed once), then asks every client's :class:`Subscription`
whether it wants it. The common cases cost a tuple comparison: a point, or a
shape whose bounds lie wholly inside or outside the viewport. Only a shape
straddling the edge is tested exactly, against the viewport prepared once
per subscribe (shapely ``prepare``).

>>> sub = parse_subscribe({"type": "subscribe", "bbox": [107.5, 16.4, 107.7, 16.5],
...                        "layers": ["hue-sensors"], "events": True})
>>> sub.accepts(parse_message('{"type":"feature","layer":"hue-sensors","id":"a",'
...                           '"geometry":{"type":"Point","coordinates":[107.6,16.45]}}'))
True
>>> sub.accepts(parse_message('{"type":"feature","layer":"other","id":"a",'
...                           '"geometry":{"type":"Point","coordinates":[107.6,16.45]}}'))
False
>>> sub.accepts(parse_message('{"type":"event","op":"created","event":{"id":1,'
...                           '"geometry":{"type":"Point","coordinates":[106.7,10.8]}}}'))
False
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

MAX_LAYERS = 200


class InvalidSubscription(ValueError):
    """A subscribe message the server cannot use; ``code`` follows the API's error codes."""

    code = "InvalidParameterValue"


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One live message as received from MQTT: the text to forward and what filtering needs."""

    kind: str                                   # "event" | "feature" | "control"
    text: str
    layer: str | None = None
    key: tuple[str, ...] | None = None          # feature messages coalesce on this key
    bounds: tuple[float, float, float, float] | None = None
    geom: BaseGeometry | None = None            # only when not a point (exact edge test)


def parse_message(text: str) -> LiveMessage:
    """Parse a live JSON message; raises ``ValueError`` (or ``KeyError``/``TypeError``) when malformed."""
    data = json.loads(text)
    kind = data.get("type")
    if kind == "event":
        return _with_geometry(LiveMessage(kind="event", text=text), data["event"].get("geometry"))
    if kind == "feature":
        layer, fid = str(data["layer"]), str(data["id"])
        return _with_geometry(LiveMessage(kind="feature", text=text, layer=layer, key=("f", layer, fid)),
                              data.get("geometry"))
    raise ValueError(f"unknown live message type {kind!r}")


def _with_geometry(message: LiveMessage, geojson: dict[str, Any] | None) -> LiveMessage:
    if not geojson:
        return message
    if geojson.get("type") == "Point":
        # Most live messages are points (devices, events): no shapely object needed.
        x, y = (float(v) for v in geojson["coordinates"][:2])
        return LiveMessage(kind=message.kind, text=message.text, layer=message.layer, key=message.key,
                           bounds=(x, y, x, y))
    geom = shape(geojson)
    if geom.is_empty:
        return message
    bounds = tuple(float(b) for b in geom.bounds)
    exact = None if geom.geom_type == "Point" else geom
    return LiveMessage(kind=message.kind, text=message.text, layer=message.layer, key=message.key,
                       bounds=bounds, geom=exact)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one client asked for (replaced whole on every subscribe, so other threads read it safely)."""

    events: bool = False
    layers: frozenset[str] = frozenset()
    bbox: tuple[float, float, float, float] | None = None
    _viewport: BaseGeometry | None = field(default=None, compare=False, repr=False)

    def with_layers(self, layers: frozenset[str]) -> Subscription:
        return Subscription(events=self.events, layers=layers, bbox=self.bbox, _viewport=self._viewport)

    def accepts(self, message: LiveMessage) -> bool:
        if message.kind == "event":
            if not self.events:
                return False
        elif message.kind == "feature":
            if message.layer not in self.layers:
                return False
        else:
            return True
        return self._in_viewport(message)

    def _in_viewport(self, message: LiveMessage) -> bool:
        if self.bbox is None:
            return True
        if message.bounds is None:
            return False
        minx, miny, maxx, maxy = message.bounds
        bx0, by0, bx1, by1 = self.bbox
        if maxx < bx0 or minx > bx1 or maxy < by0 or miny > by1:
            return False
        if message.geom is None or (minx >= bx0 and maxx <= bx1 and miny >= by0 and maxy <= by1):
            return True
        return bool(self._viewport.intersects(message.geom))


def parse_bbox(value: Any) -> tuple[float, float, float, float] | None:
    """``[minx, miny, maxx, maxy]`` in EPSG:4326 degrees, or ``None`` for "everywhere".

    >>> parse_bbox([107.5, 16.4, 107.7, 16.5])
    (107.5, 16.4, 107.7, 16.5)
    >>> try:
    ...     parse_bbox([107.7, 16.4, 107.5, 16.5])
    ... except InvalidSubscription as exc:
    ...     print(exc)
    bbox must be [minx, miny, maxx, maxy] with minx <= maxx and miny <= maxy
    """
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != 4 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise InvalidSubscription("bbox must be a list of four finite numbers [minx, miny, maxx, maxy]")
    minx, miny, maxx, maxy = (float(v) for v in value)
    if minx > maxx or miny > maxy:
        raise InvalidSubscription("bbox must be [minx, miny, maxx, maxy] with minx <= maxx and miny <= maxy")
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise InvalidSubscription("bbox is in EPSG:4326 degrees: longitudes in [-180, 180], latitudes in [-90, 90]")
    return minx, miny, maxx, maxy


def parse_layers(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 63 for v in value):
        raise InvalidSubscription("layers must be a list of layer ids")
    if len(value) > MAX_LAYERS:
        raise InvalidSubscription(f"at most {MAX_LAYERS} layers per subscription")
    return frozenset(value)


def parse_subscribe(data: dict[str, Any]) -> Subscription:
    """A client's ``{"type": "subscribe", "bbox", "layers", "events"}`` (each optional) as a :class:`Subscription`."""
    unknown = set(data) - {"type", "bbox", "layers", "events"}
    if unknown:
        raise InvalidSubscription(f"unknown subscribe field(s): {', '.join(sorted(unknown))}")
    events = data.get("events", False)
    if not isinstance(events, bool):
        raise InvalidSubscription("events must be true or false")
    bbox = parse_bbox(data.get("bbox"))
    viewport = None
    if bbox is not None:
        viewport = box(*bbox)
        shapely.prepare(viewport)
    return Subscription(events=events, layers=parse_layers(data.get("layers")), bbox=bbox, _viewport=viewport)


__all__ = ["InvalidSubscription", "LiveMessage", "Subscription", "parse_bbox", "parse_layers", "parse_message",
           "parse_subscribe"]
