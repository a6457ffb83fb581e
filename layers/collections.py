# SPDX-License-Identifier: AGPL-3.0-or-later
"""Which collections a caller may read, each with its (cached) provider.

Collections are: every layer the user may read (id = slug), the observation
series of layers whose kind has observations (id ``{slug}.observations``;
slugs never contain a dot), and the stand-alone collections of the registry
(``geo-events``). A collection the caller may not read answers exactly like
one that does not exist (404), as in :mod:`layers.access`.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from layers import registry
from layers.access import readable_layers
from layers.errors import NotFound, TwinError
from layers.providers.base import Extent, LayerProvider
from layers.query import safe_name
from twin.models import Layer
from twin.roles import has_capability

logger = logging.getLogger(__name__)

EXTENT_TTL_S = 300.0
_extents: dict[tuple, tuple[float, Extent]] = {}


@dataclass(frozen=True, slots=True)
class Collection:
    """What the API shows of one collection, plus the provider that answers its queries."""

    id: str
    title_vi: str
    title_en: str
    description: str
    provider: LayerProvider
    kind: str
    geometry_type: str = "Geometry"
    attribution: str = ""
    style: Mapping[str, Any] = field(default_factory=dict)
    layer: Layer | None = None

    def title(self, lang: str) -> str:
        return (self.title_en or self.title_vi) if lang == "en" else self.title_vi

    def extent(self) -> Extent:
        """The provider's extent, cached for a few minutes (ST_Extent over a big layer costs 100s of ms).

        A provider that cannot answer in time gets an empty extent, cached too,
        so listing collections never waits on it again (the extent is optional).
        """
        key = (self.id, self.layer.pk if self.layer else None)
        hit = _extents.get(key)
        if hit is not None and time.monotonic() - hit[0] < EXTENT_TTL_S:
            return hit[1]
        try:
            extent = self.provider.extent()
        except TwinError:
            logger.warning("no extent for collection %s", self.id)
            extent = Extent()
        _extents[key] = (time.monotonic(), extent)
        return extent


def clear_extent_cache() -> None:
    _extents.clear()


def _layer_collection(layer: Layer) -> Collection:
    spec = registry.kind_spec(layer.kind)
    attribution = layer.attribution or (layer.city.attribution if layer.city_id and layer.city else "")
    return Collection(
        id=layer.slug, title_vi=layer.title_vi, title_en=layer.title_en, description=layer.description,
        provider=registry.build_provider(spec.provider, layer_id=layer.pk, kind=layer.kind), kind=layer.kind,
        geometry_type=layer.geometry_type, attribution=attribution,
        style=layer.style or dict(spec.default_style), layer=layer,
    )


def _observation_collection(layer: Layer) -> Collection:
    return Collection(
        id=layer.slug + registry.OBSERVATIONS_SUFFIX, title_vi=f"Quan trắc: {layer.title_vi}",
        title_en=f"Observations: {layer.title_en or layer.title_vi}",
        description="Chuỗi thời gian / Time series", kind="observations", geometry_type="Point",
        provider=registry.build_provider("observations", layer_id=layer.pk, kind=layer.kind),
        attribution=layer.attribution, layer=layer,
    )


def _spec_collection(spec: registry.CollectionSpec) -> Collection:
    return Collection(id=spec.id, title_vi=spec.title_vi, title_en=spec.title_en, description=spec.description,
                      provider=registry.build_provider(spec.provider), kind=spec.provider, style=dict(spec.default_style))


def _may_read_kind(user, layer: Layer) -> bool:
    capability = registry.kind_spec(layer.kind).read_capability
    return capability is None or has_capability(user, capability)


def readable_collections(user) -> list[Collection]:
    """Every collection ``user`` may read, layers first (by slug), each followed by its observations."""
    found: list[Collection] = []
    for layer in readable_layers(user).select_related("city").order_by("slug"):
        if not _may_read_kind(user, layer):
            continue
        found.append(_layer_collection(layer))
        if registry.kind_spec(layer.kind).observations:
            found.append(_observation_collection(layer))
    for spec in registry.collection_specs():
        if spec.read_capability is None or has_capability(user, spec.read_capability):
            found.append(_spec_collection(spec))
    return found


def readable_collection(user, collection_id: str) -> Collection:
    """The collection ``collection_id`` if ``user`` may read it, else :class:`NotFound` (404)."""
    missing = NotFound(f"no collection {safe_name(collection_id)}")
    spec = registry.collection_spec(collection_id)
    if spec is not None:
        if spec.read_capability is not None and not has_capability(user, spec.read_capability):
            raise missing
        return _spec_collection(spec)
    slug, dot, suffix = collection_id.partition(".")
    if dot and "." + suffix != registry.OBSERVATIONS_SUFFIX:
        raise missing
    layer = readable_layers(user).select_related("city").filter(slug=slug).first()
    if layer is None or not _may_read_kind(user, layer):
        raise missing
    if not dot:
        return _layer_collection(layer)
    if not registry.kind_spec(layer.kind).observations:
        raise missing
    return _observation_collection(layer)
