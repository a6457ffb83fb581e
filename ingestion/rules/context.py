# SPDX-License-Identifier: AGPL-3.0-or-later
"""What every rule needs to know about a batch: its devices, fetched once."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.gis.geos import GEOSGeometry, Point

from ingestion.messages import Reading
from twin.models import Feature


@dataclass(frozen=True, slots=True)
class Device:
    """The feature a reading belongs to, as rules see it."""

    id: int
    external_id: str
    name: str
    geom: GEOSGeometry
    layer_slug: str
    layer_kind: str
    status: str
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.external_id

    @property
    def subtype(self) -> str | None:
        """The finer kind used for defaults (a sensor's ``sensor_type``)."""
        value = self.properties.get("sensor_type")
        return str(value) if value else None

    def position(self, reading: Reading | None = None) -> Point:
        """Where the event is: the reading's own position if it has one, else the feature's."""
        if reading is not None and reading.lon is not None and reading.lat is not None:
            return Point(float(reading.lon), float(reading.lat), srid=4326)
        point = self.geom if self.geom.geom_type == "Point" else self.geom.point_on_surface
        if point.srid is None:
            point.srid = 4326
        return point


def load_devices(feature_ids: Iterable[int]) -> dict[int, Device]:
    """One query for every feature of a batch."""
    rows = (Feature.objects.filter(pk__in=set(feature_ids)).select_related("layer")
            .only("id", "external_id", "name", "geom", "status", "properties", "layer__slug", "layer__kind"))
    return {f.pk: Device(id=f.pk, external_id=f.external_id, name=f.name, geom=f.geom, layer_slug=f.layer.slug,
                         layer_kind=f.layer.kind, status=f.status, properties=f.properties or {}) for f in rows}


DEVICE_CACHE_S = 30.0


class DeviceCache:
    """Devices as rules see them, kept ``DEVICE_CACHE_S`` seconds per process.

    Loading every device of every batch (geometry, properties) was the
    largest cost left in the rules on a busy stream; a device's name, place
    and per-device settings change rarely, and a change is seen within
    ``DEVICE_CACHE_S``. Offline timers read their devices fresh
    (:func:`load_devices`). Cleared with the engine (``reset_engine``,
    ``configured``).
    """

    def __init__(self, ttl_s: float = DEVICE_CACHE_S) -> None:
        self._ttl = ttl_s
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[float, Device | None]] = {}

    def get_many(self, ids: Iterable[int]) -> dict[int, Device]:
        now = time.monotonic()
        found: dict[int, Device] = {}
        with self._lock:
            missing = []
            for fid in ids:
                entry = self._entries.get(fid)
                if entry is None or now - entry[0] >= self._ttl:
                    missing.append(fid)
                elif entry[1] is not None:
                    found[fid] = entry[1]
        if missing:
            loaded = load_devices(missing)
            with self._lock:
                for fid in missing:
                    self._entries[fid] = (now, loaded.get(fid))
            found.update(loaded)
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class BatchContext:
    """Shared, lazily loaded facts about one batch, so rules do not each query them."""

    def __init__(self, readings: Iterable[Reading], cache: DeviceCache | None = None) -> None:
        self._ids = {r.feature_id for r in readings}
        self._devices: dict[int, Device] | None = None
        self._cache = cache

    def device(self, feature_id: int) -> Device | None:
        if self._devices is None:
            self._devices = self._cache.get_many(self._ids) if self._cache else load_devices(self._ids)
        return self._devices.get(feature_id)


__all__ = ["BatchContext", "DEVICE_CACHE_S", "Device", "DeviceCache", "load_devices"]
