# SPDX-License-Identifier: AGPL-3.0-or-later
"""Which attributes a layer's tiles carry, per feature kind.

Tiles are public for public layers and cached by browsers, so they carry an
explicit allowlist of short, scalar properties useful for styling and
picking, never everything in ``Feature.properties`` (a camera's
``stream_url`` may hold credentials; a report's description can be 5,000
characters). Full attributes come from the OGC API Features endpoints.

>>> print(properties_sql("sensor", "c.properties"))
, c.properties ->> 'sensor_type' AS "sensor_type", c.properties ->> 'unit' AS "unit"
>>> vector_layer_fields("building", clusters=False)["levels"]
'Number'
>>> properties_sql("generic", "c.properties")
''
"""
from __future__ import annotations

import re
import types
import typing
from typing import Literal, get_args, get_origin

from twin.kinds import KindError, get_kind

# Attributes every feature carries (MVT feature id = the database id).
BASE_FIELDS = {"id": "String", "name": "String", "status": "String", "height_m": "Number"}
CLUSTER_FIELDS = {"cluster": "Boolean", "count": "Number"}

TILE_PROPERTIES: dict[str, tuple[str, ...]] = {
    "camera": ("heading_deg", "fov_deg", "range_m"),
    "sensor": ("sensor_type", "unit"),
    "citizen_report": ("category", "report_status", "channel"),
    "tourist_site": ("site_type", "name_en", "unesco"),
    "boat": ("mmsi", "vessel_type", "length_m"),
    "building": ("building", "levels"),
    "road": ("highway", "oneway", "maxspeed_kmh", "lanes"),
    "poi": ("poi_type",),
    "admin_area": ("code", "level", "name_en"),
    "agency": ("code",),
    "water": ("waterway", "water"),
    "generic": (),
}
_SAFE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def tile_properties(kind: str) -> tuple[str, ...]:
    """Property names drawn into tiles for ``kind`` (none for kinds not listed)."""
    names = TILE_PROPERTIES.get(kind, ())
    return tuple(n for n in names if _SAFE_KEY.match(n) and n not in BASE_FIELDS and n not in CLUSTER_FIELDS)


def properties_sql(kind: str, column: str) -> str:
    """``, <expr> AS "<name>"`` select items, one typed column per tile property.

    Typed columns rather than one jsonb column: ``ST_AsMVT`` encodes them
    directly (the jsonb route cost ~1 ms more per 700-point tile). A value of
    the wrong JSON type becomes NULL (no attribute) instead of a failed cast.
    """
    types_ = vector_layer_fields(kind, clusters=False)
    items = []
    for name in tile_properties(kind):
        value, typed = f"{column} ->> '{name}'", types_.get(name, "String")
        if typed == "Number":
            value = f"CASE WHEN jsonb_typeof({column} -> '{name}') = 'number' THEN ({value})::float8 END"
        elif typed == "Boolean":
            value = f"CASE WHEN jsonb_typeof({column} -> '{name}') = 'boolean' THEN ({value})::boolean END"
        items.append(f', {value} AS "{name}"')
    return "".join(items)


def _mvt_type(annotation) -> str:
    """TileJSON ``vector_layers`` field type of a pydantic annotation."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        types_ = {_mvt_type(a) for a in get_args(annotation) if a is not type(None)}
        return types_.pop() if len(types_) == 1 else "String"
    if origin is Literal:
        values = get_args(annotation)
        return "Number" if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) else "String"
    if annotation is bool:
        return "Boolean"
    if annotation in (int, float):
        return "Number"
    return "String"


def vector_layer_fields(kind: str, *, clusters: bool) -> dict[str, str]:
    """Field name → ``String``/``Number``/``Boolean`` for TileJSON ``vector_layers``."""
    fields = dict(BASE_FIELDS)
    try:
        model_fields = get_kind(kind).properties_model.model_fields
    except KindError:
        model_fields = {}
    for name in tile_properties(kind):
        info = model_fields.get(name)
        fields[name] = _mvt_type(info.annotation) if info is not None else "String"
    if clusters:
        fields.update(CLUSTER_FIELDS)
    return fields
