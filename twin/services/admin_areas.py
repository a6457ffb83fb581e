# SPDX-License-Identifier: AGPL-3.0-or-later
"""Writes for the administrative frame: areas, agencies and the city row.

``load-city`` calls these; each runs in one transaction and is idempotent
(rows are matched by official code, or agency code, or city slug), so a
re-run updates in place and never duplicates. An area is also drawn as a
feature of its layer (kind ``admin_area``) and linked by ``AdminArea.feature``;
the feature goes through :func:`write_features`, so a broken outline is
repaired with ``ST_MakeValid`` and reported, and the area takes the repaired
geometry.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import shapely
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.db import transaction
from pyproj import Geod

from twin.errors import InvalidInput
from twin.models import AdminArea, Agency, City, Feature, Layer
from twin.services.features import FeatureRow, WriteReport, write_features

logger = logging.getLogger(__name__)

_GEOD = Geod(ellps="WGS84")


@dataclass(slots=True)
class AdminAreaRow:
    """One administrative unit as read from a boundary file."""

    level: int
    code: str
    name_vi: str
    geom: shapely.Geometry
    name_en: str = ""
    full_name_vi: str = ""
    full_name_en: str = ""
    area_km2: float | None = None
    parent_code: str | None = None
    row: int | None = None


@dataclass(slots=True)
class AdminAreaReport:
    features: WriteReport
    created: int = 0
    updated: int = 0
    removed: list[str] = field(default_factory=list)


@dataclass(slots=True)
class AgencyRow:
    code: str
    name_vi: str
    categories: list[str]
    jurisdiction: list[AdminArea]
    name_en: str = ""
    contact: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class AgencyReport:
    created: int = 0
    updated: int = 0
    removed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"agencies: {self.created} created, {self.updated} updated"
                f", {len(self.removed)} removed")


def _feature_row(area: AdminAreaRow) -> FeatureRow:
    props = {"code": area.code, "level": area.level, "name_en": area.name_en or None,
             "full_name": area.full_name_vi or None, "full_name_en": area.full_name_en or None,
             "area_km2": area.area_km2, "parent_code": area.parent_code}
    return FeatureRow(external_id=area.code, geom=area.geom, properties=props,
                      name=area.full_name_vi or area.name_vi, row=area.row)


def upsert_admin_areas(layer: Layer, rows: Sequence[AdminAreaRow], *, parent_level: int | None = None,
                       prune_under: AdminArea | None = None, progress: bool = False) -> AdminAreaReport:
    """Create or update areas and their map features, matched by (level, code).

    Parameters
    ----------
    layer:
        The ``admin_area`` layer drawing these areas.
    rows:
        The areas. ``parent_code`` names an area of ``parent_level`` that must exist.
    parent_level:
        Level of the parents (``AdminLevel.PROVINCE`` for wards); ``None`` for top-level rows.
    prune_under:
        When given, this parent's children of the rows' level that are not in
        ``rows`` are deleted, with their features: the file is the full list.
    """
    codes = [row.code for row in rows]
    with transaction.atomic():
        parents = _parents(rows, parent_level)
        report = AdminAreaReport(write_features(layer, (_feature_row(r) for r in rows),
                                                replace=prune_under is not None, progress=progress))
        features = {f.external_id: f for f in Feature.objects.filter(layer=layer, external_id__in=codes)}
        existing = {a.code: a for a in AdminArea.objects.filter(level__in={r.level for r in rows}, code__in=codes)}
        for row in rows:
            feature = features[row.code]
            geom = feature.geom if feature.geom.geom_type == "MultiPolygon" else MultiPolygon(feature.geom, srid=4326)
            values = {"name_vi": row.name_vi, "name_en": row.name_en, "full_name_vi": row.full_name_vi,
                      "full_name_en": row.full_name_en, "area_km2": row.area_km2, "geom": geom,
                      "parent": parents.get(row.parent_code) if parent_level is not None else None,
                      "feature": feature}
            area = existing.get(row.code)
            if area is None:
                AdminArea.objects.create(level=row.level, code=row.code, **values)
                report.created += 1
            elif _differs(area, values):
                for key, value in values.items():
                    setattr(area, key, value)
                area.save()
                report.updated += 1
        if prune_under is not None:
            stale = AdminArea.objects.filter(parent=prune_under, level__in={r.level for r in rows}).exclude(
                code__in=codes)
            report.removed = list(stale.values_list("code", flat=True))
            stale.delete()
    return report


def _parents(rows: Sequence[AdminAreaRow], parent_level: int | None) -> dict[str, AdminArea]:
    if parent_level is None:
        return {}
    wanted = {row.parent_code for row in rows}
    parents = {a.code: a for a in AdminArea.objects.filter(level=parent_level, code__in=wanted - {None})}
    missing = sorted(str(c) for c in wanted if c not in parents)
    if missing:
        raise InvalidInput(f"parent area(s) {', '.join(missing)} of level {parent_level} are not loaded")
    return parents


def _differs(area: AdminArea, values: Mapping) -> bool:
    for key, value in values.items():
        current = getattr(area, key)
        if key == "geom":
            if not current.equals_exact(value, tolerance=0):
                return True
        elif current != value:
            return True
    return False


def upsert_agencies(rows: Sequence[AgencyRow], *, previous_codes: Iterable[str] = ()) -> AgencyReport:
    """Create or update agencies by code, with their jurisdiction and categories.

    ``previous_codes`` are the agencies an earlier load of the same source
    created; those no longer in ``rows`` are deleted.
    """
    report = AgencyReport()
    codes = {row.code for row in rows}
    with transaction.atomic():
        existing = {a.code: a for a in Agency.objects.filter(code__in=codes).prefetch_related("jurisdiction")}
        for row in rows:
            values = {"name_vi": row.name_vi, "name_en": row.name_en, "categories": list(row.categories),
                      "contact": dict(row.contact)}
            agency = existing.get(row.code)
            if agency is None:
                agency = Agency.objects.create(code=row.code, **values)
                report.created += 1
                changed = False
            else:
                changed = any(getattr(agency, k) != v for k, v in values.items())
                if changed:
                    for key, value in values.items():
                        setattr(agency, key, value)
                    agency.save()
            if {a.pk for a in agency.jurisdiction.all()} != {a.pk for a in row.jurisdiction}:
                agency.jurisdiction.set(row.jurisdiction)
                changed = True
            report.updated += int(changed and row.code in existing)
        stale = Agency.objects.filter(code__in=set(previous_codes) - codes)
        report.removed = sorted(stale.values_list("code", flat=True))
        stale.delete()
    return report


def grow_bounds(bounds: tuple[float, float, float, float], margin_m: float) -> tuple[float, float, float, float]:
    """Grow a lon/lat box by ``margin_m`` metres on every side (geodesic, WGS 84).

    The east/west margin is taken at the box's edge nearest a pole, where a
    degree of longitude is shortest, so the margin is at least ``margin_m``
    everywhere.

    >>> w, s, e, n = grow_bounds((107.0, 16.0, 108.0, 17.0), 1000)
    >>> round(16.0 - s, 5), round(n - 17.0, 5), round(107.0 - w, 5)
    (0.00904, 0.00904, 0.00939)
    """
    west, south, east, north = bounds
    if margin_m == 0:
        return bounds
    _, north2, _ = _GEOD.fwd(west, north, 0, margin_m)
    _, south2, _ = _GEOD.fwd(west, south, 180, margin_m)
    polar_lat = north if abs(north) > abs(south) else south
    east2, _, _ = _GEOD.fwd(east, polar_lat, 90, margin_m)
    west2, _, _ = _GEOD.fwd(west, polar_lat, 270, margin_m)
    return max(west2, -180.0), max(south2, -90.0), min(east2, 180.0), min(north2, 90.0)


@dataclass(slots=True)
class CitySpec:
    slug: str
    name_vi: str
    province: AdminArea
    name_en: str = ""
    extent_margin_m: float = 0
    center: tuple[float, float] | None = None
    zoom: float = 12
    attribution: str = ""


def ensure_city(spec: CitySpec) -> City:
    """Create or update the city row; its extent is the province's box grown by the margin in metres."""
    bounds = grow_bounds(spec.province.geom.extent, spec.extent_margin_m)
    extent = Polygon.from_bbox(bounds)
    extent.srid = 4326
    if spec.center is not None:
        center = Point(*spec.center, srid=4326)
        if not extent.covers(center):
            raise InvalidInput(f"centre {spec.center} of {spec.slug} lies outside its extent {bounds}")
    else:
        center = spec.province.geom.point_on_surface
        center.srid = 4326
    with transaction.atomic():
        city, _ = City.objects.update_or_create(slug=spec.slug, defaults={
            "name_vi": spec.name_vi, "name_en": spec.name_en, "province": spec.province, "extent": extent,
            "center": center, "default_zoom": spec.zoom, "attribution": spec.attribution})
    return city


def finish_city(city: City, sources: dict) -> City:
    """Record what the city was loaded from, and when."""
    with transaction.atomic():
        city.sources = sources
        city.loaded_at = datetime.now(timezone.utc)
        city.save(update_fields=["sources", "loaded_at"])
    return city


__all__ = ["AdminAreaReport", "AdminAreaRow", "AgencyReport", "AgencyRow", "CitySpec", "ensure_city",
           "finish_city", "grow_bounds", "upsert_admin_areas", "upsert_agencies"]
