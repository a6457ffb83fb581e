# SPDX-License-Identifier: AGPL-3.0-or-later
"""Vector-tile settings: ``settings.TILES`` (a dict) validated by :class:`TileConfig`.

Read on every call rather than once at import, so ``override_settings`` in
tests and a reloaded settings module both take effect; the parsed model is
kept until the dict object changes.
"""
from __future__ import annotations

import hashlib

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field

# MVT geometry space (MVT spec 2.1 §4.3: the extent is per layer; 4096 is the usual value).
EXTENT = 4096
# Cluster cells per tile side. Fixed, not a setting: it makes a zoom-z cell exactly a
# zoom-(z+5) tile, which is what lets the overview roll cells up level by level.
CLUSTER_CELLS = 32
CELL_SHIFT = 5


class TileConfig(BaseModel):
    """What the tile endpoints accept and how dense tiles are reduced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_zoom: int = Field(22, ge=0, le=24, title="Highest zoom accepted in tile URLs (a 400 above it)")
    tilejson_maxzoom: int = Field(
        18, ge=0, le=24, title="Highest zoom advertised in TileJSON",
        description="Clients overzoom past it, which saves requests; higher zooms are still served.")
    feature_cap: int = Field(
        5000, ge=100, le=100_000, title="Most features drawn one by one in a tile",
        description="A point tile holding more is drawn as clusters with counts; a line or polygon "
                    "tile keeps the largest features up to the cap.")
    live_cluster_limit: int = Field(
        10_000, ge=1000, le=1_000_000, title="Most points aggregated live for one tile",
        description="Zooms whose dense tiles hold more points are served from the per-layer overview "
                    "(precomputed clusters, rebuilt after a write).")
    min_feature_px: float = Field(
        1.0, ge=0, le=64, title="Smallest line/polygon drawn, in pixels of a 512-px tile",
        description="Smaller features vanish at that zoom anyway; dropping them in SQL keeps dense "
                    "building tiles small and fast.")
    buffer: int = Field(64, ge=0, le=512, title="Tile buffer in tile units (of 4096)")
    max_age: int = Field(30, ge=0, le=86_400, title="Cache-Control max-age of public tiles, seconds")
    cache_alias: str = Field("tiles", title="Django cache (settings.CACHES) holding rendered tiles")
    cache_max_bytes: int = Field(4 << 20, ge=0, title="Larger tiles are not kept in the cache")
    background_rebuild_min: int = Field(
        100_000, ge=0, title="Overviews of at least this many features are rebuilt in the background",
        description="After a write, a dense tile of such a layer is drawn from the previous overview (its "
                    "counts one write behind, not cached) while a thread rebuilds it, instead of making "
                    "the request wait seconds for the rebuild. 0: always rebuild in the request.")
    layer_ttl: float = Field(
        1.0, ge=0, le=60, title="Seconds a process reuses a layer's row and data version for tiles",
        description="A cached tile is then answered without any SQL. A write in the same process is seen "
                    "at once; a write committed by another process within this many seconds. 0 turns it off.")

    @property
    def content_token(self) -> str:
        """Short digest of the settings that change what a tile holds: part of cache keys and ETags."""
        text = f"{self.feature_cap},{self.live_cluster_limit},{self.min_feature_px},{self.buffer}"
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()

    @property
    def min_feature_units(self) -> float:
        """The pixel threshold in tile units (a 512-px tile spans 4096 units: 8 per pixel)."""
        return self.min_feature_px * EXTENT / 512


_parsed: tuple[object, TileConfig] | None = None


def tile_config() -> TileConfig:
    """The current :class:`TileConfig` (raises pydantic's error on a bad ``settings.TILES``)."""
    global _parsed
    raw = getattr(settings, "TILES", None) or {}
    if _parsed is None or _parsed[0] is not raw:
        _parsed = (raw, TileConfig.model_validate(raw))
    return _parsed[1]
