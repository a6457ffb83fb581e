# SPDX-License-Identifier: AGPL-3.0-or-later
"""Routing an event to the responsible agency: a resolution chain held as data.

Two questions, answered in order and both recorded in the event payload:

1. **Where is it?** The wards within ``boundary_tolerance_m`` of the point
   are the *candidates*. Among the wards that cover the point (a point on a
   shared border is covered by both) the lowest official code wins
   (``covers`` / ``covers_lowest_code``), the same choice as
   ``twin.services.area_containing``; when none covers it (a gap between
   outlines, the shoreline) the nearest candidate wins, ties by code
   (``nearest_within_tolerance``). The province is the ward's parent, or
   the province covering the point.
2. **Who handles it?** The steps of ``chain`` are tried in order; the first
   one naming an agency wins (FixMyStreet's body resolution:
   (area, category) contact → area default → city fallback):

   ``ward_category``, ``province_category``
       agencies of that area whose categories include the event's;
   ``city_category``
       ``city_categories[category]`` (a city-wide contact for a category,
       such as the operations centre for device faults);
   ``ward_default``, ``province_default``
       agencies of that area with the default category ``*``;
   ``city_fallback``
       ``fallback_agency``, when nothing else matched (e.g. a point at sea,
       outside every ward).

Several agencies at one step: the lowest agency code wins, so a route never
depends on row order.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import Any, Literal

from django.contrib.gis.geos import GEOSGeometry, Point
from django.db.models import F
from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.models import AdminArea, AdminLevel, Agency
from twin.services import RoutedTo
from twin.services.areas import DEFAULT_HANDLER
from twin.services.sql import Statement, fetch_together

logger = logging.getLogger(__name__)

Step = Literal["ward_category", "province_category", "city_category", "ward_default", "province_default",
               "city_fallback"]

# Each step as data: which area it looks in and what it matches.
STEPS: dict[str, tuple[str, str]] = {
    "ward_category": ("ward", "category"),
    "province_category": ("province", "category"),
    "city_category": ("city", "category"),
    "ward_default": ("ward", "default"),
    "province_default": ("province", "default"),
    "city_fallback": ("city", "default"),
}
DEFAULT_CHAIN: tuple[Step, ...] = ("ward_category", "province_category", "city_category", "ward_default",
                                   "province_default", "city_fallback")


class RoutingConfig(BaseModel):
    """The ``[routing]`` table of ``rules.toml``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    chain: tuple[Step, ...] = Field(default=DEFAULT_CHAIN, min_length=1, description="Resolution steps, tried in "
                                    "order; the first that names an agency wins.")
    city_categories: dict[str, str] = Field(default_factory=dict, description="Category → agency code for "
                                            "city-wide contacts (step city_category).")
    fallback_agency: str | None = Field(default=None, description="Agency code of last resort (step city_fallback),"
                                        " e.g. the city's operations centre.")
    boundary_tolerance_m: float = Field(default=10.0, ge=0, le=500, description="Wards within this many metres "
                                        "are recorded as candidates; a point outside every ward goes to the "
                                        "nearest one within it.")

    @model_validator(mode="after")
    def _chain_is_usable(self) -> RoutingConfig:
        if len(set(self.chain)) != len(self.chain):
            raise ValueError("routing.chain lists a step twice")
        return self


@dataclass(frozen=True, slots=True)
class Candidate:
    code: str
    area_id: int
    covers: bool
    distance_m: float


@dataclass(frozen=True, slots=True)
class Route:
    """Where an event is and who handles it, with the reasons."""

    ward: AdminArea | None
    province: AdminArea | None
    agency: Agency | None
    step: str | None
    rule: str
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)
    tolerance_m: float = 0.0

    @property
    def routed_to(self) -> RoutedTo:
        return RoutedTo(ward_id=self.ward.pk if self.ward else None, agency_id=self.agency.pk if self.agency else None)

    def as_payload(self) -> dict[str, Any]:
        """The record kept in ``GeoEvent.payload['routing']``."""
        return {
            "ward": self.ward.code if self.ward else None,
            "ward_name": self.ward.name_vi if self.ward else None,
            "province": self.province.code if self.province else None,
            "candidates": [c.code for c in self.candidates],
            "distances_m": {c.code: round(c.distance_m, 2) for c in self.candidates},
            "rule": self.rule,
            "tolerance_m": self.tolerance_m,
            "step": self.step,
            "agency": self.agency.code if self.agency else None,
        }


# One statement for any number of points (an events batch, a batch of citizen reports): the points
# travel as arrays and each candidate row carries its point's position ``i`` (1-based). One point is
# the same statement with arrays of one, so single and batch routing cannot drift apart. The bounding
# box test comes first and alone (a ward that covers the point always passes it: margin ≥ 0), so
# each point is an index scan on the GiST index; under an OR the planner compared every pair. The
# planar ST_DWithin in degrees (margin > tolerance, see _index_margin) spares the costly geodesic
# distance to the outlines of the neighbouring wards whose box holds the point but which are far.
# Against the areas' small pieces (twin.AdminAreaPiece: inline, GiST-indexed), not their whole outlines: a
# point is covered by a ward if one of its pieces covers it, and its distance to a ward is the least distance
# to one of its pieces, so grouping by ward gives what the outlines would give, without reading a 52 KB
# outline back from TOAST for each test.
_CANDIDATES_SQL = """
SELECT p.i, a.id, a.code, bool_or(ST_Covers(s.geom, p.g)) AS covers,
       min(CASE WHEN ST_Covers(s.geom, p.g) THEN 0
                ELSE ST_Distance(s.geom::geography, p.g::geography) END) AS distance_m
  FROM (SELECT u.i, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326) AS g, u.margin
          FROM unnest(%(lon)s::float8[], %(lat)s::float8[], %(margin)s::float8[])
               WITH ORDINALITY AS u(lon, lat, margin, i)) AS p
  JOIN twin_adminareapiece s
    ON s.level = %(level)s
   AND s.geom && ST_Expand(p.g, p.margin)
   AND (ST_Covers(s.geom, p.g)
        OR (ST_DWithin(s.geom, p.g, p.margin)
            AND ST_DWithin(s.geom::geography, p.g::geography, %(tol)s)))
  JOIN twin_adminarea a ON a.id = s.area_id
 GROUP BY p.i, a.id, a.code
 ORDER BY p.i, a.code
"""


def _index_margin(lat: float, metres: float) -> float:
    """A bounding-box margin (degrees) surely wider than ``metres``: an index prefilter only.

    The decision itself is ``ST_DWithin`` on geography, in metres.

    >>> round(_index_margin(16.46, 10) * 111_320, 1) > 10
    True
    """
    if metres <= 0:
        return 0.0
    return 1.1 * metres / (111_320 * max(math.cos(math.radians(lat)), 0.01)) + 1e-9


def ward_candidates(point: Point, tolerance_m: float) -> list[Candidate]:
    """Wards covering ``point`` or within ``tolerance_m`` of it, by code."""
    return ward_candidates_many([point], tolerance_m)[0]


def candidates_statement(points: Sequence[Point], tolerance_m: float) -> Statement:
    """The query behind :func:`ward_candidates_many`, to send with other reads
    (:func:`twin.services.sql.fetch_together`); read its rows with :func:`candidates_from`."""
    return Statement(_CANDIDATES_SQL, {
        "lon": [p.x for p in points], "lat": [p.y for p in points], "level": int(AdminLevel.WARD),
        "tol": tolerance_m, "margin": [_index_margin(p.y, tolerance_m) for p in points]})


def candidates_from(rows: list[tuple], n: int) -> list[list[Candidate]]:
    """Per point (in order) its candidates, from the rows of :func:`candidates_statement` for ``n`` points."""
    out: list[list[Candidate]] = [[] for _ in range(n)]
    for i, pk, code, covers, dist in rows:
        out[i - 1].append(Candidate(code=code, area_id=pk, covers=covers, distance_m=float(dist)))
    return out


def ward_candidates_many(points: Sequence[Point], tolerance_m: float) -> list[list[Candidate]]:
    """:func:`ward_candidates` of every point (EPSG:4326), in order, with one query.

    Why: a batch (of reports, of events) would otherwise pay one round trip per point.
    """
    if not points:
        return []
    return candidates_from(fetch_together([candidates_statement(points, tolerance_m)])[0], len(points))


def choose_ward(candidates: list[Candidate]) -> tuple[Candidate | None, str]:
    """The deterministic choice among candidates, and the rule that made it.

    >>> a, b = Candidate("19774", 2, True, 0.0), Candidate("19753", 1, True, 0.0)
    >>> choose_ward([a, b])[0].code, choose_ward([a, b])[1]
    ('19753', 'covers_lowest_code')
    >>> choose_ward([Candidate("2", 2, False, 3.0), Candidate("1", 1, False, 3.0)])[0].code
    '1'
    >>> choose_ward([])
    (None, 'outside')
    """
    covering = sorted((c for c in candidates if c.covers), key=lambda c: c.code)
    if covering:
        return covering[0], "covers" if len(covering) == 1 else "covers_lowest_code"
    if candidates:
        return min(candidates, key=lambda c: (c.distance_m, c.code)), "nearest_within_tolerance"
    return None, "outside"


class Router:
    """Resolves events to a ward and an agency along the configured chain."""

    def __init__(self, cfg: RoutingConfig | None = None) -> None:
        self.cfg = cfg or RoutingConfig()

    def route(self, geom: GEOSGeometry, category: str) -> Route:
        point = geom if geom.geom_type == "Point" else geom.point_on_surface
        if point.srid not in (None, 4326):
            point = point.transform(4326, clone=True)
        candidates = ward_candidates(point, self.cfg.boundary_tolerance_m)
        chosen, rule = choose_ward(candidates)
        ward = AdminArea.objects.select_related("parent").get(pk=chosen.area_id) if chosen else None
        province = ward.parent if ward and ward.parent and ward.parent.level == AdminLevel.PROVINCE else None
        if province is None:
            province = (AdminArea.objects.filter(level=AdminLevel.PROVINCE, geom__covers=Point(point.x, point.y,
                        srid=4326)).order_by("code").first())
        agency, step = self.agency_for(ward, province, category)
        return Route(ward=ward, province=province, agency=agency, step=step, rule=rule,
                     candidates=tuple(candidates), tolerance_m=self.cfg.boundary_tolerance_m)

    def agency_for(self, ward: AdminArea | None, province: AdminArea | None,
                   category: str) -> tuple[Agency | None, str | None]:
        """The first agency along the chain, and the step that found it."""
        return self.agencies_for([(ward, province, category)])[0]

    def agencies_for(self, keys: Sequence[tuple[AdminArea | None, AdminArea | None, str]]
                     ) -> list[tuple[Agency | None, str | None]]:
        """:meth:`agency_for` of every ``(ward, province, category)``, with one or two queries in all.

        The agencies of every area involved (their categories included) and,
        when a city step is reached, the city-wide agencies the chain names are
        read once; each key then walks the chain over them. An area step matches an agency of that area
        whose categories hold the category (``*`` for the default steps); the
        lowest code wins. Why: a batch of reports would otherwise pay up to six
        queries per new (ward, category).
        """
        if not keys:
            return []
        areas = {a.pk for w, p, _ in keys for a in (w, p) if a is not None}
        by_area: dict[int, list[Agency]] = {}
        for agency in (Agency.objects.filter(jurisdiction__in=areas).annotate(area_ref=F("jurisdiction"))
                       .order_by("code") if areas else ()):
            by_area.setdefault(agency.area_ref, []).append(agency)
        by_code: dict[str, Agency] = {}

        def city_agency(code: str) -> Agency | None:
            """The city-wide agencies the chain names, read once, when a city step is first reached."""
            if not by_code:
                codes = set(self.cfg.city_categories.values()) | ({self.cfg.fallback_agency} - {None})
                by_code.update({a.code: a for a in Agency.objects.filter(code__in=codes)})
                by_code.setdefault("", None)   # read: do not ask again
            return by_code.get(code)

        return [self._walk(ward, province, category, by_area, city_agency) for ward, province, category in keys]

    def _walk(self, ward, province, category, by_area, city_agency) -> tuple[Agency | None, str | None]:
        areas = {"ward": ward, "province": province}
        for step in self.cfg.chain:
            where, match = STEPS[step]
            if where == "city":
                code = self.cfg.city_categories.get(category) if match == "category" else self.cfg.fallback_agency
                agency = city_agency(code) if code else None
                if code and agency is None:
                    logger.warning("routing step %s names agency %r, which is not loaded", step, code)
            elif areas[where] is None:
                continue
            else:
                wanted = category if match == "category" else DEFAULT_HANDLER
                agency = next((a for a in by_area.get(areas[where].pk, ()) if wanted in a.categories), None)
            if agency is not None:
                return agency, step
        return None, None


__all__ = ["Candidate", "DEFAULT_CHAIN", "Route", "Router", "RoutingConfig", "STEPS", "choose_ward",
           "ward_candidates",
           "ward_candidates_many"]
