# SPDX-License-Identifier: AGPL-3.0-or-later
"""Metric spatial queries: nearest N and within a radius, in true metres.

Distances use ``geography`` (WGS 84 spheroid) through the functional index
``twin_feature_geog_gist`` on ``geom::geography``; nothing is in degrees.
Queries are typed objects first, SQL second.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from twin.errors import InvalidInput
from twin.models import Feature
from twin.services.areas import make_point

MAX_RESULTS = 1000
MAX_RADIUS_M = 200_000


@dataclass(frozen=True, slots=True)
class NearestQuery:
    lon: float
    lat: float
    limit: int = 10
    layers: tuple[str, ...] = ()
    max_distance_m: float | None = None

    def __post_init__(self) -> None:
        make_point(self.lon, self.lat)
        if not 1 <= self.limit <= MAX_RESULTS:
            raise InvalidInput(f"limit must be between 1 and {MAX_RESULTS}")
        if self.max_distance_m is not None and not 0 < self.max_distance_m <= MAX_RADIUS_M:
            raise InvalidInput(f"max distance must be between 0 and {MAX_RADIUS_M} m")


@dataclass(frozen=True, slots=True)
class WithinQuery:
    lon: float
    lat: float
    radius_m: float
    layers: tuple[str, ...] = ()
    limit: int = MAX_RESULTS

    def __post_init__(self) -> None:
        make_point(self.lon, self.lat)
        if not 0 < self.radius_m <= MAX_RADIUS_M:
            raise InvalidInput(f"radius must be between 0 and {MAX_RADIUS_M} m")
        if not 1 <= self.limit <= MAX_RESULTS:
            raise InvalidInput(f"limit must be between 1 and {MAX_RESULTS}")


_POINT = "ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography"


def _run(sql: str, params: dict) -> list[tuple[Feature, float]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    by_id = Feature.objects.select_related("layer").in_bulk([r[0] for r in rows])
    return [(by_id[fid], float(distance)) for fid, distance in rows if fid in by_id]


def _layer_filter(layers: tuple[str, ...]) -> str:
    return "AND f.layer_id IN (SELECT id FROM twin_layer WHERE slug = ANY(%(layers)s))" if layers else ""


def nearest(query: NearestQuery) -> list[tuple[Feature, float]]:
    """The ``limit`` features closest to the point, with distances in metres.

    Index-assisted KNN (``<->`` on geography) orders by *sphere* distance,
    which can swap two features a few metres apart. So it only finds a
    radius: the spheroidal distance of the farthest of the first ``limit``
    candidates. Every feature nearer than that lies inside it, so an
    index-assisted ``ST_DWithin`` on the spheroid (plus 1 cm against rounding)
    then gives the exact answer.
    """
    radius = "AND ST_DWithin(f.geom::geography, " + _POINT + ", %(radius)s)" if query.max_distance_m else ""
    where = f"{_layer_filter(query.layers)} {radius}"
    sql = (f"WITH knn AS (SELECT f.geom FROM twin_feature f WHERE TRUE {where} "
           f"ORDER BY f.geom::geography <-> {_POINT} LIMIT %(limit)s), "
           f"reach AS (SELECT max(ST_Distance(geom::geography, {_POINT})) AS r FROM knn) "
           f"SELECT f.id, ST_Distance(f.geom::geography, {_POINT}) AS d FROM twin_feature f, reach "
           f"WHERE ST_DWithin(f.geom::geography, {_POINT}, reach.r + 0.01) {where} "
           f"ORDER BY d, f.id LIMIT %(limit)s")
    return _run(sql, {"lon": query.lon, "lat": query.lat, "limit": query.limit, "layers": list(query.layers),
                      "radius": query.max_distance_m})


def within(query: WithinQuery) -> list[tuple[Feature, float]]:
    """Features within ``radius_m`` metres of the point, nearest first."""
    sql = (f"SELECT f.id, ST_Distance(f.geom::geography, {_POINT}) AS d FROM twin_feature f "
           f"WHERE ST_DWithin(f.geom::geography, {_POINT}, %(radius)s) {_layer_filter(query.layers)} "
           f"ORDER BY d, f.id LIMIT %(limit)s")
    return _run(sql, {"lon": query.lon, "lat": query.lat, "radius": query.radius_m, "limit": query.limit,
                      "layers": list(query.layers)})
