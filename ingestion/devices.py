# SPDX-License-Identifier: AGPL-3.0-or-later
"""Payload → :class:`Reading`: which feature sent it, and is it where it may be.

The second half of the parse path (after :func:`ingestion.parsing.parse_message`).
A device is a feature of a device kind in one of its city's layers of that
kind; ``device_id`` in the topic is the feature's ``external_id``. An unknown
device is refused, never created on the fly: registration is an operator act.

Lookups are cached with a short lifetime (unknown devices even shorter), so
a stream of readings costs no query per message and a device registered now
is accepted within seconds.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import shapely

from ingestion.config import DeviceCacheConfig
from ingestion.messages import Reading, Rejected
from ingestion.parsing import ParsedMessage, Reason, reject
from twin.models import City, Feature, FeatureStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceRef:
    feature_id: int
    city: str


class _TTLCache:
    """A dict whose entries expire; small, single-threaded (the sink thread owns it)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._data: dict = {}

    def get(self, key):
        hit = self._data.get(key)
        if hit is None or hit[0] < self._clock():
            return None
        return hit

    def put(self, key, value, ttl: float) -> None:
        if len(self._data) > 100_000:   # a flood of random device ids must not grow memory forever
            self._data.clear()
        self._data[key] = (self._clock() + ttl, value)

    def clear(self) -> None:
        self._data.clear()


class DeviceDirectory:
    """Resolves devices and checks positions against the city extent."""

    def __init__(self, cfg: DeviceCacheConfig | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._cfg = cfg or DeviceCacheConfig()
        self._devices = _TTLCache(clock)
        self._extents = _TTLCache(clock)

    def clear(self) -> None:
        """Forget everything (after a storage error that may come from a stale entry)."""
        self._devices.clear()
        self._extents.clear()

    def lookup(self, city: str, kind: str, device_id: str) -> tuple[DeviceRef | None, str]:
        """The device, or ``None`` and why not."""
        key = (city, kind, device_id)
        hit = self._devices.get(key)
        if hit is None:
            self.prefetch([key])
            hit = self._devices.get(key)
        return hit[1]

    def prefetch(self, keys: Iterable[tuple[str, str, str]]) -> None:
        """Look up every uncached (city, kind, device id) with one query (a batch from many devices)."""
        missing = {key for key in keys if self._devices.get(key) is None}
        if not missing:
            return
        found: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
        rows = (Feature.objects.filter(layer__city__slug__in={k[0] for k in missing},
                                       layer__kind__in={k[1] for k in missing},
                                       external_id__in={k[2] for k in missing})
                .values_list("layer__city__slug", "layer__kind", "external_id", "id", "status"))
        for city, kind, device_id, feature_id, status in rows:
            found.setdefault((city, kind, device_id), []).append((feature_id, status))
        for key in missing:
            self._remember(key, found.get(key, []))

    def _remember(self, key: tuple[str, str, str], found: list[tuple[int, str]]) -> None:
        city, kind, device_id = key
        if len(found) == 1 and found[0][1] != FeatureStatus.RETIRED:
            self._devices.put(key, (DeviceRef(found[0][0], city), ""), self._cfg.ttl_s)
            return
        why = {0: f"no {kind} {device_id!r} registered in city {city!r}",
               1: f"{kind} {device_id!r} in city {city!r} is retired"}.get(
            len(found), f"{kind} {device_id!r} is ambiguous in city {city!r} (several layers hold it)")
        self._devices.put(key, (None, why), self._cfg.negative_ttl_s)

    def extent(self, city: str):
        """The city's extent as a prepared shapely geometry (cached)."""
        hit = self._extents.get(city)
        if hit is not None:
            return hit[1]
        polygon = City.objects.filter(slug=city).values_list("extent", flat=True).first()
        geometry = shapely.from_wkb(bytes(polygon.wkb)) if polygon is not None else None
        if geometry is not None:
            shapely.prepare(geometry)
        self._extents.put(city, geometry, self._cfg.ttl_s)
        return geometry

    def resolve(self, message: ParsedMessage) -> list[Reading] | Rejected:
        """Readings of a known device inside its city, or the reason it is refused."""
        ref, why = self.lookup(message.city, message.kind, message.device_id)
        if ref is None:
            return reject(message.topic, message.payload, Reason.UNKNOWN_DEVICE, why, message.received_at)
        problem = self._position_problem(message)
        if problem:
            return reject(message.topic, message.payload, Reason.OUT_OF_EXTENT, problem, message.received_at)
        return _readings(message, ref)

    def _position_problem(self, message: ParsedMessage) -> str:
        """(0, 0) is the classic "no GPS fix" value; outside the extent is a swapped lon/lat or a wrong CRS."""
        points = [(i, *at) for i, at in enumerate(message.positions) if at is not None]
        if not points:
            return ""
        index, lon, lat = points[0]
        for index, lon, lat in points:
            if lon == 0 and lat == 0:
                return f"reading {index}: position (0, 0) is a missing fix, not a place"
        extent = self.extent(message.city)
        if extent is None:
            return f"city {message.city!r} has no extent"
        inside = shapely.contains_xy(extent, np.array([p[1] for p in points]), np.array([p[2] for p in points]))
        if not inside.all():
            index, lon, lat = points[int(np.argmin(inside))]
            return f"reading {index}: ({lon}, {lat}) is outside the extent of {message.city!r}"
        return ""


def _readings(message: ParsedMessage, ref: DeviceRef) -> list[Reading]:
    """The message's readings, built by loops in C: this runs for every reading, tens of thousands a second.

    ``tuple.__new__`` is what ``Reading._make`` calls, without the named
    tuple's Python-level ``__new__`` (a quarter of this function's time);
    the fields are in ``Reading``'s order (messages.py).
    """
    count = len(message.times)
    if message.positions:
        lons = [None if at is None else at[0] for at in message.positions]
        lats = [None if at is None else at[1] for at in message.positions]
    else:
        lons, lats = repeat(None, count), repeat(None, count)
    ids = map(f"{message.key}:".__add__, _index_texts(count))
    return list(map(_NEW_TUPLE, repeat(Reading), zip(
        repeat(ref.feature_id), repeat(message.device_id), repeat(message.kind), repeat(message.stream),
        message.times, message.values, lons, lats, repeat(message.city), ids)))


_NEW_TUPLE = tuple.__new__
_INDEX_TEXTS: list[str] = []


def _index_texts(count: int) -> list[str]:
    """``["0", "1", ...]``, ``count`` long, formatted once per process."""
    if len(_INDEX_TEXTS) < count:
        _INDEX_TEXTS.extend(map(str, range(len(_INDEX_TEXTS), count)))
    return _INDEX_TEXTS[:count]


__all__ = ["DeviceDirectory", "DeviceRef"]
