# SPDX-License-Identifier: AGPL-3.0-or-later
"""Features of a layer in an admin area, in a drawn polygon, or along a line.

Same pattern as :mod:`twin.spatial`: a frozen, checked query object, then
one index-friendly statement under ``statement_timeout``.

Two predicates for areas, because planners ask two different questions:

- ``intersects`` (default): every feature touching the area, so a road
  crossing a ward border is in both wards. The area is cut with
  ``ST_Subdivide`` first: a ward outline has thousands of vertices, and
  small pieces let the GiST index on ``geom`` reject far features by box
  and keep each exact test cheap.
- ``within``: only features entirely inside (``ST_CoveredBy``, so a point
  exactly on the border still counts).

Distances along lines are true metres: ``ST_DWithin`` on ``geography``
(functional index ``twin_feature_geog_gist``) and ``along_m`` is the
spheroidal length of the line up to the feature's closest point.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import shapely
from shapely.geometry.base import BaseGeometry

from twin.errors import InvalidInput, NotFound
from twin.models import AdminArea, Layer
from twin.spatial import MatchPage, fetch_bounded, page_of
from twin.spatial_input import checked_line, checked_polygon

MAX_AREA_RESULTS = 10_000
DEFAULT_AREA_LIMIT = 1000
MAX_BUFFER_M = 5_000
SUBDIVIDE_VERTICES = 256
_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,19}")


class Predicate(StrEnum):
    INTERSECTS = "intersects"
    WITHIN = "within"


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_AREA_RESULTS:
        raise InvalidInput(f"limit must be between 1 and {MAX_AREA_RESULTS}")
    if offset < 0:
        raise InvalidInput("offset must not be negative")


def _predicate(value: str) -> Predicate:
    try:
        return Predicate(value)
    except ValueError:
        raise InvalidInput(f"predicate must be one of {', '.join(p.value for p in Predicate)}") from None


def layer_id(slug: str) -> int:
    """The primary key of layer ``slug``; :class:`NotFound` when there is none."""
    found = Layer.objects.filter(slug=slug).values_list("id", flat=True).first()
    if found is None:
        raise NotFound(f"no layer {slug!r}" if re.fullmatch(r"[a-z0-9-]{1,63}", slug) else "no such layer")
    return found


@dataclass(frozen=True, slots=True)
class AreaQuery:
    """Features of ``layer`` in the admin area with official ``code`` (e.g. ward 19753, province 46)."""

    layer: str
    code: str
    level: int | None = None
    predicate: str = Predicate.INTERSECTS
    limit: int = DEFAULT_AREA_LIMIT
    offset: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not _CODE.fullmatch(self.code):
            raise InvalidInput("an admin area code is 1-20 letters or digits, e.g. 19753 (a ward) or 46 (Huế)")
        if self.level is not None and not 0 <= self.level <= 3:
            raise InvalidInput("level must be 0 (country), 1 (province), 2 (district) or 3 (ward)")
        _predicate(self.predicate)
        _check_page(self.limit, self.offset)


@dataclass(frozen=True, slots=True)
class PolygonQuery:
    """Features of ``layer`` in a drawn (Multi)Polygon in lon/lat; checked by :func:`checked_polygon`."""

    layer: str
    polygon: BaseGeometry
    predicate: str = Predicate.INTERSECTS
    limit: int = DEFAULT_AREA_LIMIT
    offset: int = 0

    def __post_init__(self) -> None:
        checked_polygon(self.polygon)
        _predicate(self.predicate)
        _check_page(self.limit, self.offset)


@dataclass(frozen=True, slots=True)
class AlongQuery:
    """Features of ``layer`` within ``buffer_m`` metres of a LineString, ordered along it."""

    layer: str
    line: BaseGeometry
    buffer_m: float
    limit: int = DEFAULT_AREA_LIMIT
    offset: int = 0

    def __post_init__(self) -> None:
        checked_line(self.line)
        if not 0 < self.buffer_m <= MAX_BUFFER_M:
            raise InvalidInput(f"buffer must be more than 0 and at most {MAX_BUFFER_M} m")
        _check_page(self.limit, self.offset)


def admin_area(code: str, level: int | None = None) -> AdminArea:
    """The admin area with this official code (and level, when the code exists at several)."""
    areas = AdminArea.objects.filter(code=code)
    if level is not None:
        areas = areas.filter(level=level)
    found = list(areas.only("id", "code", "level", "name_vi", "name_en")[:5])
    if not found:
        raise NotFound(f"no admin area with code {code!r}" + (f" at level {level}" if level is not None else ""))
    if len(found) > 1:
        levels = ", ".join(str(a.level) for a in found)
        raise InvalidInput(f"code {code!r} exists at several levels ({levels}); add level=")
    return found[0]


def _in_shape(shape_sql: str, predicate: str, params: dict, limit: int, offset: int) -> MatchPage:
    """Features of ``params['layer']`` meeting ``predicate`` with the (multi)polygon ``shape_sql``."""
    if Predicate(predicate) is Predicate.WITHIN:
        test = f"ST_CoveredBy(f.geom, {shape_sql})"
    else:
        test = (f"f.id IN (SELECT g.id FROM (SELECT ST_Subdivide({shape_sql}, {SUBDIVIDE_VERTICES}) AS part) p "
                "JOIN twin_feature g ON ST_Intersects(g.geom, p.part) WHERE g.layer_id = %(layer)s)")
    sql = (f"SELECT f.id FROM twin_feature f WHERE f.layer_id = %(layer)s AND {test} "
           "ORDER BY f.external_id, f.id LIMIT %(limit)s OFFSET %(offset)s")
    rows = fetch_bounded(sql, {**params, "limit": limit + 1, "offset": offset})
    return page_of(rows, limit, ())


def in_admin_area(query: AreaQuery) -> MatchPage:
    """Features of the layer in the admin area, ordered by external id (stable pages)."""
    area = admin_area(query.code, query.level)
    shape_sql = "(SELECT a.geom FROM twin_adminarea a WHERE a.id = %(area)s)"
    return _in_shape(shape_sql, query.predicate, {"layer": layer_id(query.layer), "area": area.pk},
                     query.limit, query.offset)


def in_polygon(query: PolygonQuery) -> MatchPage:
    """Features of the layer in the drawn polygon, ordered by external id (stable pages)."""
    params = {"layer": layer_id(query.layer), "shape": shapely.to_wkb(query.polygon)}
    return _in_shape("ST_GeomFromWKB(%(shape)s, 4326)", query.predicate, params, query.limit, query.offset)


_LINE = "ST_GeomFromWKB(%(line)s, 4326)"


def along_line(query: AlongQuery) -> MatchPage:
    """Features within the buffer of the line, ordered by ``along_m``, then ``distance_m``.

    ``along_m`` is where the feature's closest point projects onto the
    line, measured from the line's first vertex as a spheroidal length.
    """
    closest = f"ST_LineLocatePoint({_LINE}, ST_ClosestPoint({_LINE}, f.geom))"
    sql = (f"SELECT f.id, ST_Distance(f.geom::geography, {_LINE}::geography) AS d, "
           f"ST_Length(ST_LineSubstring({_LINE}, 0, {closest})::geography) AS along "
           f"FROM twin_feature f WHERE f.layer_id = %(layer)s "
           f"AND ST_DWithin(f.geom::geography, {_LINE}::geography, %(buffer)s) "
           "ORDER BY along, d, f.id LIMIT %(limit)s OFFSET %(offset)s")
    params = {"layer": layer_id(query.layer), "line": shapely.to_wkb(query.line), "buffer": query.buffer_m,
              "limit": query.limit + 1, "offset": query.offset}
    return page_of(fetch_bounded(sql, params), query.limit, ("distance_m", "along_m"))
