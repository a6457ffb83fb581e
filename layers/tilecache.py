# SPDX-License-Identifier: AGPL-3.0-or-later
"""Where rendered tiles are kept, and why an entry can never be stale.

Every tile is keyed by its layer's *data version* (``twin_layer_data_version``,
bumped by :func:`twin.services.features.write_features` in the write's own
transaction). A write therefore changes the key of every tile of the layer:
nothing is ever purged, old entries simply stop being asked for and the
cache backend evicts them. Reading the version costs no extra query: it is
fetched with the layer itself, and a cached tile is answered without
touching ``twin_feature``.

That one query (access rule + layer + version) is itself kept in process for
``TileConfig.layer_ttl`` seconds (:class:`LayerLookupCache`), so a cached
tile costs no SQL at all: on a busy 2-core machine the round trip was what
pushed a hit's p95 past 5 ms. Staleness is bounded: a write in this process
drops the entry at once (``twin.signals.layer_data_changed``), a write in
another process is seen within the TTL, and nothing read inside a
transaction is kept (it may be uncommitted, or rolled back).

The same key gives the ETag, so ``If-None-Match`` is answered with a 304
before anything is rendered or even read from the cache.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import caches
from django.db import connection
from django.db.models.expressions import RawSQL

from layers.access import readable_layers
from layers.tileconfig import TileConfig
from twin.errors import NotFound
from twin.models import Layer
from twin.roles import Capability, has_capability

logger = logging.getLogger(__name__)

# Bump when the SQL changes what a tile contains: every cached tile and ETag changes with it.
TILE_FORMAT = "ct-mvt-1"
_VERSION_SQL = ("COALESCE((SELECT v.version FROM twin_layer_data_version v "
                "WHERE v.layer_id = twin_layer.id), 0)")


class LayerLookupCache:
    """Layer rows with their data version, per (slug, may read private layers, with city), for a few seconds.

    Keyed by what the access rule depends on, not by the user, so every
    anonymous client shares one entry. Thread-safe: WSGI and ASGI servers
    answer tiles from several threads.
    """

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[tuple[str, bool, bool], tuple[float, Layer]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, bool, bool]) -> Layer | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def put(self, key: tuple[str, bool, bool], layer: Layer, ttl: float) -> None:
        if ttl <= 0:
            return
        with self._lock:
            if len(self._entries) > 4096:  # slugs are few; this only guards against probing
                self._entries.clear()
            self._entries[key] = (self._clock() + ttl, layer)

    def forget(self, layer_id: int | None = None) -> None:
        """Drop the entries of ``layer_id`` (every entry when ``None``)."""
        with self._lock:
            if layer_id is None:
                self._entries.clear()
            else:
                self._entries = {k: v for k, v in self._entries.items() if v[1].pk != layer_id}


LAYER_LOOKUPS = LayerLookupCache()


def forget_layer(sender=None, layer_id: int | None = None, **_) -> None:
    """Receiver of ``twin.signals.layer_data_changed`` and of Layer saves/deletes (layers/apps.py)."""
    LAYER_LOOKUPS.forget(layer_id)


def layer_with_version(user, slug: str, *, with_city: bool = False, cfg: TileConfig | None = None) -> Layer:
    """The layer ``slug`` if ``user`` may read it, with ``data_version`` set; else :class:`NotFound`.

    One query (access rule from layers/access.py, layer row and data version
    together), or none when :data:`LAYER_LOOKUPS` holds a fresh answer.
    """
    ttl = cfg.layer_ttl if cfg is not None else 0.0
    key = (slug, has_capability(user, Capability.READ_PRIVATE_LAYERS), with_city)
    if ttl > 0:
        layer = LAYER_LOOKUPS.get(key)
        if layer is not None:
            return layer
    layer = _query_layer(user, slug, with_city=with_city)
    if not connection.in_atomic_block:  # never keep what may be uncommitted
        LAYER_LOOKUPS.put(key, layer, ttl)
    return layer


def _query_layer(user, slug: str, *, with_city: bool) -> Layer:
    layers = readable_layers(user).filter(slug=slug).annotate(data_version=RawSQL(_VERSION_SQL, ()))
    if with_city:
        layers = layers.select_related("city")
    layer = layers.first()
    if layer is None:
        raise NotFound(f"no collection {slug!r}")
    return layer


@dataclass(frozen=True, slots=True)
class TileKey:
    """Everything a tile's bytes depend on."""

    layer_id: int
    layer_created: datetime
    version: int
    z: int
    x: int
    y: int

    def text(self, cfg: TileConfig) -> str:
        # layer_created guards against a layer id reused after a database restore.
        return (f"{TILE_FORMAT}:{cfg.content_token}:{self.layer_id}:{self.layer_created.timestamp():.6f}:"
                f"{self.version}:{self.z}/{self.x}/{self.y}")

    def cache_key(self, cfg: TileConfig) -> str:
        return "tile:" + hashlib.blake2b(self.text(cfg).encode(), digest_size=16).hexdigest()

    def etag(self, cfg: TileConfig) -> str:
        # Weak: the same version renders the same features, but not necessarily
        # byte-identical (row order, gzip); RFC 9110 §8.8.3 weak comparison fits.
        return 'W/"' + hashlib.blake2b(self.text(cfg).encode(), digest_size=12).hexdigest() + '"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison against a list of tags or ``*``."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in if_none_match.split(","))


def cached_tile(key: TileKey, cfg: TileConfig) -> bytes | None:
    """The stored (gzip-compressed) tile, ``b""`` for a stored empty tile, or ``None``."""
    try:
        return caches[cfg.cache_alias].get(key.cache_key(cfg))
    except Exception:  # a broken cache must never break the map: render instead
        logger.exception("tile cache read failed")
        return None


def store_tile(key: TileKey, cfg: TileConfig, body: bytes) -> None:
    if len(body) > cfg.cache_max_bytes:
        return
    try:
        caches[cfg.cache_alias].set(key.cache_key(cfg), body)
    except Exception:
        logger.exception("tile cache write failed")
