# SPDX-License-Identifier: AGPL-3.0-or-later
"""The one table of MQTT topic patterns: used to subscribe *and* to dispatch.

Topic scheme (``docs/ingestion.md``)::

    {root}/{city}/{kind}/{device_id}/{stream}      e.g. city/hue/sensor/aq-0012/air
    {root}/{city}/ingest/{worker}/available        the workers' own online/offline flag

``root`` is ``city`` in production (tests use a unique root each). ``kind``
is the device's layer kind, ``device_id`` its ``Feature.external_id`` within
the city, ``stream`` picks the payload schema. Frigate keeps one list to
subscribe and another to dispatch and they drift; here both come from
:data:`TOPIC_TABLE`.

>>> scheme = TopicScheme(root="city")
>>> scheme.subscriptions("ingest")[0]
'$share/ingest/city/+/sensor/+/+'
>>> m = scheme.match("city/hue/sensor/aq-1/air")
>>> (m.city, m.kind, m.device_id, m.stream, m.schema.__name__)
('hue', 'sensor', 'aq-1', 'air', 'AirQualityObserved')
>>> scheme.match("city/hue/sensor/aq-1/radio") is None
False
>>> scheme.match("city/hue/sensor/aq-1/radio").schema is None
True
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ingestion.schemas import (AirQualityObserved, Alert, CameraCounts, CameraDetection, Device, FloodMonitoring,
                               StreamPayload, VehiclePosition, WaterQualityObserved)

WILDCARDS = frozenset("+#")
MATCH_CACHE_SIZE = 50_000     # distinct topics remembered per scheme (≈ devices × streams)


@dataclass(frozen=True, slots=True)
class TopicPattern:
    """One row of the table: a topic pattern and the streams it carries.

    ``pattern`` uses ``{placeholders}`` for topic levels; ``{root}`` and
    ``{city}`` are filled from configuration, every other placeholder
    becomes ``+`` when subscribing and a captured value when dispatching.
    """

    pattern: str
    kind: str
    streams: Mapping[str, type[StreamPayload]]

    def levels(self) -> list[str]:
        return self.pattern.split("/")

    def subscription(self, root: str, city: str) -> str:
        """The MQTT topic filter for this row (``+`` for every free level)."""
        parts = []
        for level in self.levels():
            if level == "{root}":
                parts.append(root)
            elif level == "{city}":
                parts.append(city)
            elif level.startswith("{"):
                parts.append("+")
            else:
                parts.append(level)
        return "/".join(parts)

    def capture(self, root: str, topic: str) -> dict[str, str] | None:
        """The placeholders' values if ``topic`` fits this row, else ``None``."""
        if not topic.startswith(root + "/"):
            return None
        rest = topic[len(root) + 1:].split("/")
        levels = self.levels()[1:]
        if len(rest) != len(levels):
            return None
        values: dict[str, str] = {}
        for level, part in zip(levels, rest):
            if not part:
                return None
            if level.startswith("{"):
                values[level[1:-1]] = part
            elif level != part:
                return None
        return values


def _streams(**streams: type[StreamPayload]) -> Mapping[str, type[StreamPayload]]:
    return MappingProxyType(streams)


# The table. Adding a stream is one entry here plus its schema in schemas.py.
TOPIC_TABLE: tuple[TopicPattern, ...] = (
    TopicPattern("{root}/{city}/sensor/{device_id}/{stream}", "sensor", _streams(
        air=AirQualityObserved, water_quality=WaterQualityObserved, water_level=FloodMonitoring,
        alert=Alert, status=Device,
    )),
    TopicPattern("{root}/{city}/camera/{device_id}/{stream}", "camera", _streams(
        alert=Alert, status=Device, detection=CameraDetection, counts=CameraCounts)),
    TopicPattern("{root}/{city}/boat/{device_id}/{stream}", "boat", _streams(position=VehiclePosition,
                                                                              status=Device)),
)

AVAILABILITY_PATTERN = "{root}/{city}/ingest/{worker}/available"


@dataclass(frozen=True, slots=True)
class TopicMatch:
    """A topic taken apart. ``schema`` is ``None`` when the stream is unknown for the kind."""

    city: str
    kind: str
    device_id: str
    stream: str
    schema: type[StreamPayload] | None


@dataclass(frozen=True, slots=True)
class TopicScheme:
    """The table bound to one deployment's root and city filter."""

    root: str = "city"
    city: str = "+"
    table: tuple[TopicPattern, ...] = TOPIC_TABLE
    # Topic string → match. A device publishes on the same few topics all day,
    # and taking a topic apart cost ~6 µs of the ~25 µs a single-reading
    # message spends in parsing. Cleared when full, so unknown topics sent
    # by a misbehaving client cannot grow it without bound.
    _matches: dict[str, TopicMatch | None] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.root or WILDCARDS & set(self.root) or self.root.startswith("$") or self.root.endswith("/"):
            raise ValueError(f"topic root {self.root!r} must be a plain topic prefix without wildcards")
        if self.city != "+" and (not self.city or (WILDCARDS | {"/"}) & set(self.city)):
            raise ValueError(f"city {self.city!r} must be a city slug or '+'")

    def subscriptions(self, shared_group: str | None = None) -> list[str]:
        """Topic filters to subscribe to, shared (``$share/GROUP/…``, MQTT 5 §4.8.2) when a group is given."""
        filters = [row.subscription(self.root, self.city) for row in self.table]
        if shared_group:
            return [f"$share/{shared_group}/{f}" for f in filters]
        return filters

    def match(self, topic: str) -> TopicMatch | None:
        """Dispatch: the row ``topic`` belongs to, with its parts; ``None`` if no row fits."""
        cache = self._matches
        try:
            return cache[topic]
        except KeyError:
            pass
        if len(cache) >= MATCH_CACHE_SIZE:
            cache.clear()
        found = cache[topic] = self._match(topic)
        return found

    def _match(self, topic: str) -> TopicMatch | None:
        for row in self.table:
            values = row.capture(self.root, topic)
            if values is None or (self.city != "+" and values["city"] != self.city):
                continue
            stream = values["stream"]
            return TopicMatch(city=values["city"], kind=row.kind, device_id=values["device_id"], stream=stream,
                              schema=row.streams.get(stream))
        return None

    def availability(self, worker: str) -> str:
        """Where a worker says ``online`` (retained) and its last will says ``offline``."""
        city = "all" if self.city == "+" else self.city
        return AVAILABILITY_PATTERN.format(root=self.root, city=city, worker=worker)

    def device_topic(self, city: str, kind: str, device_id: str, stream: str) -> str:
        """The topic a device publishes to (used by tests, the simulator and the ACL writer)."""
        return f"{self.root}/{city}/{kind}/{device_id}/{stream}"


def valid_topic_level(value: str) -> bool:
    """True if ``value`` can be one topic level (no ``/``, wildcards or NUL; MQTT 5 §4.7).

    >>> valid_topic_level("aq-1"), valid_topic_level("a/b"), valid_topic_level("a+")
    (True, False, False)
    """
    return bool(value) and not (set(value) & {"/", "+", "#", "\0"})


__all__ = ["AVAILABILITY_PATTERN", "TOPIC_TABLE", "TopicMatch", "TopicPattern", "TopicScheme", "valid_topic_level"]
