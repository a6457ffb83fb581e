# SPDX-License-Identifier: AGPL-3.0-or-later
"""A feature query, parsed and checked before any provider runs.

The request's parameters become one frozen :class:`FeatureQuery`, one small
parser per parameter (the pg_featureserv ``QueryParam`` pattern). Every
parser raises :class:`~layers.errors.InvalidInput` (400,
``InvalidParameterValue``) with a message naming the parameter, so a provider
only ever sees values that are valid, typed and bounded.

Who uses this:

- ``layers.api`` (OGC API – Features ``/items``);
- exports of "any query result": call :func:`parse_feature_query` with the
  request's parameters and the collection's queryables, then
  ``provider.query(q)`` or ``provider.iter_features(q)``.

>>> fields = {"name": Queryable("name", "string", "f.name")}
>>> q = parse_feature_query({"bbox": "107.5,16.4,107.7,16.5", "limit": "5", "name": "Ngọ Môn"}, fields)
>>> (q.bbox.minx, q.bbox.maxy, q.limit, q.property_filters)
(107.5, 16.5, 5, (('name', 'Ngọ Môn'),))
"""
from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from pyproj import CRS, Transformer
from pyproj.exceptions import ProjError

from layers.crs import CRS84, CRS84H, EPSG_URI, STORAGE, OutputCrs, epsg_crs, parse_crs, parse_output_crs  # noqa: F401 (re-exported)
from layers.errors import InvalidInput

DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
MAX_OFFSET = 10_000_000
MAX_SORT_KEYS = 5
MAX_VALUE_CHARS = 1000


# Parameters every items request may carry (OGC API – Features Part 1 §7.15,
# Part 2 bbox-crs, Part 3 filter*; sortby and properties as in pygeoapi).
QUERY_PARAMETERS = frozenset({
    "bbox", "bbox-crs", "datetime", "limit", "offset", "sortby", "properties",
    "filter", "filter-lang", "filter-crs", "crs",
})


@dataclass(frozen=True, slots=True)
class Queryable:
    """A property clients may filter and sort on.

    ``sql`` is a trusted SQL expression written by the registry (never from a
    request); values compared with it are always bound parameters. ``type`` is
    the JSON Schema type; ``format`` is ``date-time`` for timestamps.
    """

    name: str
    type: str
    sql: str
    format: str | None = None
    title: str = ""
    enum: tuple[Any, ...] | None = None
    sortable: bool = True
    output: str | None = None  # SQL of the value shown in responses (JSON); default ``sql``

    @property
    def output_sql(self) -> str:
        return self.output or self.sql

    @property
    def is_datetime(self) -> bool:
        return self.format in {"date-time", "date"}

    @property
    def is_geometry(self) -> bool:
        return self.type == "geometry"


@dataclass(frozen=True, slots=True)
class BBox:
    """A bounding box in CRS84 (lon/lat), plus the exact footprint when the request CRS was projected.

    ``footprint_wkt`` is the request box densified and transformed to CRS84;
    ``None`` when the box was already lon/lat (then the rectangle is exact).
    """

    minx: float
    miny: float
    maxx: float
    maxy: float
    crs: str = CRS84
    footprint_wkt: str | None = None


@dataclass(frozen=True, slots=True)
class TimeInterval:
    """A closed interval; ``None`` ends are open (``..``). An instant has ``start == end``."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True, slots=True)
class SortKey:
    name: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class SqlFragment:
    """A WHERE fragment with ``%s`` placeholders and its bound parameters, in order."""

    sql: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class FeatureQuery:
    """Everything a provider needs to answer one items request; immutable once parsed."""

    bbox: BBox | None = None
    datetime_interval: TimeInterval | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    property_filters: tuple[tuple[str, Any], ...] = ()
    sortby: tuple[SortKey, ...] = ()
    properties: tuple[str, ...] | None = None
    cql_filter: SqlFragment | None = None
    extra: Mapping[str, str] = field(default_factory=dict, hash=False)  # caller-handled (f, lang...)
    crs: OutputCrs = STORAGE  # output CRS of the geometries (Part 2 ``crs``)

    def page(self, offset: int, limit: int | None = None) -> FeatureQuery:
        """The same query for another page (exports iterate with this)."""
        return replace(self, offset=offset, limit=self.limit if limit is None else limit)


# --- the parsers, one per parameter -------------------------------------------------------------

def parse_limit(raw: str | None, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """``limit``: an integer 1..maximum; larger is refused, not silently capped (clients then know)."""
    value = _integer("limit", raw, default)
    if not 1 <= value <= maximum:
        raise InvalidInput(f"parameter 'limit' must be between 1 and {maximum}")
    return value


def parse_offset(raw: str | None) -> int:
    value = _integer("offset", raw, 0)
    if not 0 <= value <= MAX_OFFSET:
        raise InvalidInput(f"parameter 'offset' must be between 0 and {MAX_OFFSET}")
    return value


def parse_bbox(raw: str | None, crs_raw: str | None = None) -> BBox | None:
    """``bbox`` (4 or 6 numbers) in ``bbox-crs`` (default CRS84), as a CRS84 :class:`BBox`.

    Axis order follows the CRS (OGC API – Features Part 2 §6.2): EPSG:4326 is
    lat/lon, CRS84 lon/lat. Reversed corners are refused (no antimeridian
    wrapping: no city we serve spans it).
    """
    crs_uri = parse_crs("bbox-crs", crs_raw)
    if raw is None or not raw.strip():
        return None
    numbers = [_finite("bbox", part) for part in raw.split(",")]
    if len(numbers) == 6:  # minx, miny, minz, maxx, maxy, maxz: heights do not filter 2D features
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4:
        raise InvalidInput("parameter 'bbox' must have 4 or 6 comma-separated numbers")
    x1, y1, x2, y2 = numbers
    if x1 > x2 or y1 > y2:
        raise InvalidInput("parameter 'bbox': the lower corner must come first (minx ≤ maxx and miny ≤ maxy)")
    return _bbox_to_crs84(crs_uri, x1, y1, x2, y2)


def parse_datetime(raw: str | None) -> TimeInterval | None:
    """``datetime``: an RFC 3339 instant, or an interval ``start/end`` with ``..`` (or empty) for open ends."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if "/" not in text:
        start, end = _instant(text, end_of_day=False), _instant(text, end_of_day=True)
        return TimeInterval(start, end)
    left, _, right = text.partition("/")
    start = None if left.strip() in {"", ".."} else _instant(left.strip(), end_of_day=False)
    end = None if right.strip() in {"", ".."} else _instant(right.strip(), end_of_day=True)
    if start is None and end is None:
        raise InvalidInput("parameter 'datetime': an interval needs at least one bound")
    if start is not None and end is not None and start > end:
        raise InvalidInput("parameter 'datetime': the interval ends before it starts")
    return TimeInterval(start, end)


def parse_sortby(raw: str | None, fields: Mapping[str, Queryable]) -> tuple[SortKey, ...]:
    """``sortby=+name,-height_m``: queryables only. A bare ``+`` arrives as a space (form encoding)."""
    if raw is None or not raw.strip():
        return ()
    keys: list[SortKey] = []
    for part in raw.split(","):
        token = part.strip()
        descending = token.startswith("-")
        name = token.lstrip("+-").strip()
        queryable = fields.get(name)
        if queryable is None or not queryable.sortable:
            raise InvalidInput(f"parameter 'sortby': {safe_name(name)} is not a sortable queryable of this collection")
        keys.append(SortKey(name, descending))
    if len({k.name for k in keys}) != len(keys) or len(keys) > MAX_SORT_KEYS:
        raise InvalidInput(f"parameter 'sortby': at most {MAX_SORT_KEYS} distinct properties")
    return tuple(keys)


def parse_properties(raw: str | None, fields: Mapping[str, Queryable]) -> tuple[str, ...] | None:
    """``properties=a,b``: which properties each feature carries (queryables only); ``None`` = all."""
    if raw is None:
        return None
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    for name in names:
        if name not in fields or fields[name].is_geometry:
            raise InvalidInput(f"parameter 'properties': {safe_name(name)} is not a property of this collection")
    return names


def parse_property_filter(name: str, raw: str, queryable: Queryable) -> Any:
    """``?name=value`` for a queryable: the value typed as the queryable (equality filter)."""
    if len(raw) > MAX_VALUE_CHARS:
        raise InvalidInput(f"parameter {name!r}: value longer than {MAX_VALUE_CHARS} characters")
    if queryable.type == "integer":
        return _integer(name, raw, 0)
    if queryable.type == "number":
        return _finite(name, raw)
    if queryable.type == "boolean":
        if raw.strip().lower() not in {"true", "false"}:
            raise InvalidInput(f"parameter {name!r} must be true or false")
        return raw.strip().lower() == "true"
    if queryable.is_datetime:
        return _instant(raw.strip(), end_of_day=False)
    if queryable.is_geometry:
        raise InvalidInput(f"parameter {name!r}: filter geometry with bbox or a CQL2 filter")
    return raw


def parse_feature_query(params: Mapping[str, str], fields: Mapping[str, Queryable], *,
                        temporal: str | None = None, allowed: Collection[str] = (),
                        max_limit: int = MAX_LIMIT) -> FeatureQuery:
    """Parse an items request's parameters against a collection's queryables.

    Parameters
    ----------
    params
        Query parameters, one value each (the caller refuses repeats).
    fields
        The collection's queryables, by name (``provider.fields()``).
    temporal
        The queryable ``datetime`` applies to; ``None`` refuses ``datetime``.
    allowed
        Other parameter names the caller handles itself (``f``, ``lang``...).

    Returns
    -------
    FeatureQuery
        Raises :class:`InvalidInput` (400) on the first bad parameter.
    """
    from layers.cql import parse_filter  # cql needs Queryable from here

    unknown = [k for k in params if k not in QUERY_PARAMETERS and k not in allowed and k not in fields]
    if unknown:
        raise InvalidInput(f"unknown query parameter {safe_name(unknown[0])}; see the collection's queryables "
                           f"and {', '.join(sorted(QUERY_PARAMETERS))}")
    interval = parse_datetime(params.get("datetime"))
    if interval is not None and temporal is None:
        raise InvalidInput("parameter 'datetime': this collection has no temporal property")
    filters = tuple((name, parse_property_filter(name, value, fields[name])) for name, value in params.items()
                    if name in fields and name not in QUERY_PARAMETERS and name not in allowed)
    return FeatureQuery(
        bbox=parse_bbox(params.get("bbox"), params.get("bbox-crs")),
        datetime_interval=interval,
        limit=parse_limit(params.get("limit"), maximum=max_limit),
        offset=parse_offset(params.get("offset")),
        property_filters=filters,
        sortby=parse_sortby(params.get("sortby"), fields),
        properties=parse_properties(params.get("properties"), fields),
        cql_filter=parse_filter(params.get("filter"), params.get("filter-lang"), params.get("filter-crs"), fields),
        extra={k: v for k, v in params.items() if k in allowed},
        crs=parse_output_crs(params.get("crs")),
    )


# --- helpers ---------------------------------------------------------------------------------------

def safe_name(name: str) -> str:
    """A parameter or property name safe to echo: identifiers only, never arbitrary input."""
    return repr(name) if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_:.\-]{0,63}", name) else "(a name that is not valid)"


def _integer(name: str, raw: str | None, default: int) -> int:
    if raw is None or not raw.strip():
        return default
    if not re.fullmatch(r"[+-]?\d{1,12}", raw.strip()):
        raise InvalidInput(f"parameter {name!r} must be an integer")
    return int(raw)


def _finite(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise InvalidInput(f"parameter {name!r} must contain numbers only") from None
    if not math.isfinite(value):
        raise InvalidInput(f"parameter {name!r} must contain finite numbers")
    return value


def _instant(text: str, *, end_of_day: bool) -> datetime:
    """An RFC 3339 date-time (naive = UTC) or a full date (the whole day, UTC)."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidInput("parameter 'datetime': not a valid date") from None
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1, microseconds=-1) if end_of_day else start
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?", text):
        raise InvalidInput("parameter 'datetime' must be an RFC 3339 date-time (2025-07-01T08:00:00Z), "
                           "a date, or an interval start/end with '..' for an open end")
    try:
        value = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise InvalidInput("parameter 'datetime': not a valid date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@lru_cache(maxsize=64)
def to_crs84(uri: str) -> Transformer:
    """A transformer from ``uri`` (authority axis order) to CRS84 lon/lat."""
    return Transformer.from_crs(epsg_crs(uri), CRS.from_user_input("OGC:CRS84"))


def _check_lon_lat(lon1: float, lat1: float, lon2: float, lat2: float) -> None:
    if not (-180 <= lon1 <= 180 and -180 <= lon2 <= 180 and -90 <= lat1 <= 90 and -90 <= lat2 <= 90):
        raise InvalidInput("parameter 'bbox': longitudes must be within -180..180 and latitudes within -90..90 "
                           "(EPSG:4326 expects lat,lon order; CRS84 lon,lat)")


def _bbox_to_crs84(uri: str, x1: float, y1: float, x2: float, y2: float) -> BBox:
    if uri == CRS84:
        _check_lon_lat(x1, y1, x2, y2)
        return BBox(x1, y1, x2, y2, uri)
    if uri == EPSG_URI.format(code=4326):  # lat, lon (EPSG axis order)
        _check_lon_lat(y1, x1, y2, x2)
        return BBox(y1, x1, y2, x2, uri)
    ring = _densified_ring(x1, y1, x2, y2)
    try:
        lons, lats = to_crs84(uri).transform([p[0] for p in ring], [p[1] for p in ring], errcheck=True)
    except (ProjError, ValueError):
        raise InvalidInput("parameter 'bbox' lies outside the area where bbox-crs is defined") from None
    if not all(math.isfinite(v) for v in (*lons, *lats)):
        raise InvalidInput("parameter 'bbox' lies outside the area where bbox-crs is defined")
    _check_lon_lat(min(lons), min(lats), max(lons), max(lats))
    wkt = "POLYGON((" + ",".join(f"{lon!r} {lat!r}" for lon, lat in zip(lons, lats)) + "))"
    return BBox(min(lons), min(lats), max(lons), max(lats), uri, wkt)


def _densified_ring(x1: float, y1: float, x2: float, y2: float, steps: int = 16) -> list[tuple[float, float]]:
    """The box's outline with ``steps`` points per edge, closed: straight edges may curve in CRS84."""
    ring: list[tuple[float, float]] = []
    for (ax, ay), (bx, by) in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        ring.extend((ax + (bx - ax) * i / steps, ay + (by - ay) * i / steps) for i in range(steps))
    ring.append(ring[0])
    return ring
