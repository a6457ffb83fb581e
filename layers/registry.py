# SPDX-License-Identifier: AGPL-3.0-or-later
"""The registry of layer kinds, stand-alone collections and providers.

Each layer kind declares, in one :class:`LayerKindSpec`: its provider, its
queryable properties (derived from the kind's pydantic property model in
:mod:`twin.kinds` plus the core feature columns), the property ``datetime``
filters on, its default map style, an extra capability needed to read it,
and whether its features have observations (then ``{slug}.observations``
is a collection too). Adding a kind is one :func:`register` call; a kind of
:mod:`twin.kinds` with no spec gets a derived default, so imports of new
kinds are served at once.

Providers are named by type in :data:`PROVIDERS` and loaded by dotted path
(pygeoapi ``plugin.py``); :func:`load_provider` builds each config once and
caches it. Wiring happens in ``LayersConfig.ready()``; tests swap specs with
:func:`registered` and reset caches with :func:`clear_caches`.

>>> [q.name for q in derive_queryables("poi")][:6]
['geometry', 'name', 'status', 'height_m', 'last_seen', 'updated_at']
>>> next(q for q in derive_queryables("road") if q.name == "lanes").type
'integer'
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from layers.errors import UnknownProvider
from layers.query import Queryable
from twin.kinds import KindError, get_kind
from twin.models import FeatureStatus, last_seen_sql
from twin.roles import Capability

logger = logging.getLogger(__name__)

PROVIDERS: dict[str, str] = {
    "features": "layers.providers.postgis.FeatureProvider",
    "observations": "layers.providers.observations.ObservationProvider",
    "events": "layers.providers.events.EventProvider",
}

#: the suffix of a layer's observation collection; slugs never contain a dot
OBSERVATIONS_SUFFIX = ".observations"
MAX_CACHED_PROVIDERS = 1024

CORE_QUERYABLES: tuple[Queryable, ...] = (
    Queryable("geometry", "geometry", "f.geom", title="Hình học / Geometry", sortable=False),
    Queryable("name", "string", "f.name", title="Tên / Name"),
    Queryable("status", "string", "f.status", title="Trạng thái / Status", enum=tuple(FeatureStatus.values)),
    Queryable("height_m", "number", "f.height_m", title="Chiều cao (m) / Height (m)"),
    Queryable("last_seen", "string", last_seen_sql("f"), format="date-time", title="Lần cuối ghi nhận / Last seen"),
    Queryable("updated_at", "string", "f.updated_at", format="date-time", title="Cập nhật / Updated"),
)
#: core columns that are output properties (``updated_at`` filters but is not shown)
CORE_PROPERTIES = ("name", "status", "height_m", "last_seen")


@dataclass(frozen=True, slots=True)
class LayerKindSpec:
    """How the layers API serves layers of one feature kind."""

    kind: str
    provider: str = "features"
    queryables: tuple[Queryable, ...] = ()      # empty: derived from twin.kinds
    temporal: str | None = None                 # queryable used by ``datetime``
    default_style: Mapping[str, Any] = field(default_factory=dict)
    read_capability: Capability | None = None   # needed on top of the layer's public/private rule
    observations: bool = False                  # features have an observation time series

    def resolved_queryables(self) -> tuple[Queryable, ...]:
        return self.queryables or derive_queryables(self.kind)


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    """A collection that is not a layer (the geo-event stream)."""

    id: str
    title_vi: str
    title_en: str
    provider: str
    description: str = ""
    read_capability: Capability | None = None
    default_style: Mapping[str, Any] = field(default_factory=dict)


_POINT_STYLE = {"type": "circle", "radius": 6, "stroke": "#ffffff"}
BUILTIN_SPECS = (
    LayerKindSpec("camera", temporal="last_seen", observations=True,
                  default_style={**_POINT_STYLE, "fill": "#1565c0", "icon": "camera"}),
    LayerKindSpec("sensor", temporal="last_seen", observations=True,
                  default_style={**_POINT_STYLE, "fill": "#2e7d32", "icon": "sensor"}),
    LayerKindSpec("boat", temporal="last_seen", observations=True,
                  default_style={**_POINT_STYLE, "fill": "#00838f", "icon": "boat"}),
    LayerKindSpec("citizen_report", temporal="reported_at",
                  default_style={**_POINT_STYLE, "fill": "#ef6c00", "icon": "report"}),
    LayerKindSpec("tourist_site", default_style={**_POINT_STYLE, "fill": "#8e24aa", "fill_opacity": 0.4}),
    LayerKindSpec("building", default_style={"type": "fill-extrusion", "fill": "#b0a89a",
                                             "extrusion_height": "height_m"}),
    LayerKindSpec("road", default_style={"type": "line", "stroke": "#616161", "width": 2}),
    LayerKindSpec("poi", default_style={**_POINT_STYLE, "fill": "#c62828"}),
    LayerKindSpec("admin_area", default_style={"type": "fill", "fill": "#90a4ae", "fill_opacity": 0.1,
                                               "stroke": "#37474f"}),
    LayerKindSpec("agency", default_style={**_POINT_STYLE, "fill": "#4e342e"}),
    LayerKindSpec("water", default_style={"type": "fill", "fill": "#4fc3f7", "stroke": "#0288d1"}),
    LayerKindSpec("generic", default_style={"type": "auto", "fill": "#757575"}),
)
BUILTIN_COLLECTIONS = (
    CollectionSpec("geo-events", "Sự kiện không gian", "Geo-events", provider="events",
                   description="Phát hiện và cảnh báo / Detections and alerts",
                   read_capability=Capability.READ_EVENTS,
                   default_style={**_POINT_STYLE, "fill": "#d50000", "icon": "alert"}),
)


class _Registry:
    """Kinds, stand-alone collections and the provider cache; one instance, resettable."""

    def __init__(self) -> None:
        self.kinds: dict[str, LayerKindSpec] = {}
        self.collections: dict[str, CollectionSpec] = {}
        self.providers: dict[Any, Any] = {}
        self.lock = threading.Lock()


_REGISTRY = _Registry()


def register(spec: LayerKindSpec | CollectionSpec) -> None:
    """Add or replace a layer kind spec or a stand-alone collection."""
    if isinstance(spec, LayerKindSpec):
        _REGISTRY.kinds[spec.kind] = spec
    else:
        _REGISTRY.collections[spec.id] = spec
    clear_caches()


def register_builtin() -> None:
    """Register the built-in kinds and the geo-event stream (``LayersConfig.ready``)."""
    for spec in (*BUILTIN_SPECS, *BUILTIN_COLLECTIONS):
        register(spec)


def kind_spec(kind: str) -> LayerKindSpec:
    """The spec of ``kind``: the registered one, else a default derived from twin.kinds."""
    spec = _REGISTRY.kinds.get(kind)
    return spec if spec is not None else LayerKindSpec(kind)


def collection_specs() -> list[CollectionSpec]:
    return sorted(_REGISTRY.collections.values(), key=lambda s: s.id)


def collection_spec(collection_id: str) -> CollectionSpec | None:
    return _REGISTRY.collections.get(collection_id)


@contextlib.contextmanager
def registered(spec: LayerKindSpec | CollectionSpec) -> Iterator[LayerKindSpec | CollectionSpec]:
    """Register ``spec`` for the duration of a block (tests, plugins), then restore."""
    table = _REGISTRY.kinds if isinstance(spec, LayerKindSpec) else _REGISTRY.collections
    key = spec.kind if isinstance(spec, LayerKindSpec) else spec.id
    previous = table.get(key)
    register(spec)
    try:
        yield spec
    finally:
        if previous is None:
            table.pop(key, None)
        else:
            table[key] = previous
        clear_caches()


def clear_caches() -> None:
    """Forget built providers (after registering, and between tests)."""
    with _REGISTRY.lock:
        _REGISTRY.providers.clear()


def load_provider(config: BaseModel):
    """The provider for ``config`` (a frozen pydantic ``…Config``), built once and cached."""
    cached = _REGISTRY.providers.get(config)
    if cached is not None:
        return cached
    provider = provider_class(config.type)(config)
    with _REGISTRY.lock:
        if len(_REGISTRY.providers) >= MAX_CACHED_PROVIDERS:
            _REGISTRY.providers.clear()
        _REGISTRY.providers[config] = provider
    return provider


def build_provider(provider_type: str, **settings: Any):
    """The cached provider of type ``provider_type`` for these settings (``layer_id``, ``kind``...).

    The provider class names its pydantic config (``config_model``); the
    config is validated here, so a bad setting fails loudly at first use.
    """
    return load_provider(provider_class(provider_type).config_model(type=provider_type, **settings))


def provider_class(provider_type: str) -> type:
    """The class registered for ``provider_type`` (or a dotted path), imported on first use."""
    path = PROVIDERS.get(provider_type, provider_type if "." in provider_type else None)
    if path is None:
        raise UnknownProvider(f"unknown provider type {provider_type!r}")
    module, cls = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), cls)


# --- queryables derived from the kinds' property models ---------------------------------------

def derive_queryables(kind: str) -> tuple[Queryable, ...]:
    """Core columns plus the scalar properties of ``kind``'s pydantic model.

    Lists and objects are left out (CQL2 array operators are not supported);
    JSON values are typed in SQL with ``jsonb_typeof`` so a stray value of
    another type reads as NULL instead of failing the whole query.
    """
    try:
        schema = get_kind(kind).properties_model.model_json_schema()
    except KindError:
        return CORE_QUERYABLES
    core = {q.name for q in CORE_QUERYABLES}
    derived = [q for name, prop in schema.get("properties", {}).items()
               if name not in core and (q := _property_queryable(name, prop)) is not None]
    return CORE_QUERYABLES + tuple(derived)


def _property_queryable(name: str, prop: Mapping[str, Any]) -> Queryable | None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        return None
    options = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    if len(options) != 1 or options[0].get("type") not in {"string", "number", "integer", "boolean"}:
        return None
    option = options[0]
    json_type, fmt = option["type"], option.get("format")
    enum = tuple(option.get("enum") or prop.get("enum") or ()) or None
    return Queryable(name, json_type, _json_sql(name, json_type, fmt), format=fmt,
                     title=str(prop.get("title", name)), enum=enum, output=f"f.properties->'{name}'")


def _json_sql(key: str, json_type: str, fmt: str | None) -> str:
    """Typed SQL for ``properties[key]``; ``key`` is a checked identifier from a model, not input."""
    raw, text = f"f.properties->'{key}'", f"(f.properties->>'{key}')"
    if json_type in {"number", "integer"}:
        return f"(CASE WHEN jsonb_typeof({raw}) = 'number' THEN {text}::double precision END)"
    if json_type == "boolean":
        return f"(CASE WHEN jsonb_typeof({raw}) = 'boolean' THEN {text}::boolean END)"
    if fmt in {"date-time", "date"}:
        return f"(CASE WHEN jsonb_typeof({raw}) = 'string' THEN {text}::timestamptz END)"
    return text
