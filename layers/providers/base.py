# SPDX-License-Identifier: AGPL-3.0-or-later
"""What every layer provider offers, and the page of features it answers with.

A provider serves one collection (a layer's features, a layer's
observations, the geo-event stream). It is built once from its pydantic
config by :func:`layers.registry.load_provider` and cached, so it holds no
per-request state. Optional capabilities are flags (``supports_tiles``),
never discovered by catching ``NotImplementedError``.

Usage (the items API and exports both do exactly this)::

    provider = registry.load_provider(config)
    q = parse_feature_query(params, provider.fields(), temporal=provider.temporal)
    page = provider.query(q)        # FeaturePage
    body = page.features_json       # '{"type":"Feature",...},{...}' built by PostgreSQL
    page.features                   # the same, parsed (list of GeoJSON dicts)
    for feature in provider.iter_features(q): ...   # every match, page by page
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from layers.crs import STORAGE, OutputCrs
from layers.query import FeatureQuery, Queryable


@dataclass(frozen=True, slots=True)
class FeaturePage:
    """One page of a query's result.

    ``features_json`` is the comma-joined GeoJSON features, serialised by
    PostgreSQL; Python only wraps it, which keeps responses near the SQL floor.
    ``number_matched`` is ``None`` when counting would be too expensive
    (it is optional in OGC API – Features, §7.15.8).
    """

    features_json: str
    number_returned: int
    number_matched: int | None
    has_more: bool

    @property
    def features(self) -> list[dict[str, Any]]:
        return json.loads(f"[{self.features_json}]")


@dataclass(frozen=True, slots=True)
class Extent:
    """Spatial extent in CRS84 and temporal extent (both optional)."""

    bbox: tuple[float, float, float, float] | None = None
    interval: tuple[datetime | None, datetime | None] | None = None
    features: int | None = None  # how many, when the provider counts them in the same scan


class LayerProvider(ABC):
    """Base of providers: queryables, queries, single features, extent."""

    type: ClassVar[str]
    supports_tiles: ClassVar[bool] = False      # the tiles engineer's MVT path can serve it
    supports_datetime: ClassVar[bool] = False   # has a temporal queryable for ``datetime``
    supports_cql2: ClassVar[bool] = True        # accepts ``filter`` (OGC API – Features Part 3)
    supports_sorting: ClassVar[bool] = True

    #: name of the queryable that ``datetime`` filters on, or ``None``
    temporal: str | None = None

    @abstractmethod
    def fields(self) -> Mapping[str, Queryable]:
        """The queryables of the collection, by name (includes ``geometry``)."""

    @abstractmethod
    def query(self, q: FeatureQuery) -> FeaturePage:
        """One page of features matching ``q``."""

    @abstractmethod
    def get(self, fid: str, crs: OutputCrs = STORAGE) -> str:
        """The GeoJSON feature ``fid`` as JSON text (coordinates in ``crs``); :class:`~layers.errors.NotFound` if absent."""

    @abstractmethod
    def extent(self) -> Extent:
        """The collection's extent (may be cached by the caller)."""

    def iter_features(self, q: FeatureQuery, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Every feature matching ``q`` from ``q.offset`` on, ignoring ``q.limit`` (for exports)."""
        offset = q.offset
        while True:
            page = self.query(q.page(offset, page_size))
            yield from page.features
            if not page.has_more:
                return
            offset += page.number_returned
