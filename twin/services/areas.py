# SPDX-License-Identifier: AGPL-3.0-or-later
"""Where is this? Point → ward → province → responsible agencies."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.gis.geos import GEOSGeometry, Point

from twin.errors import InvalidInput
from twin.models import AdminArea, AdminLevel, Agency
from twin.points import lonlat_point

DEFAULT_HANDLER = "*"


@dataclass(frozen=True, slots=True)
class PointResolution:
    ward: AdminArea | None
    province: AdminArea | None
    agencies: list[Agency] = field(default_factory=list)


def make_point(lon: float, lat: float) -> Point:
    """A WGS 84 point from user input, with range checks and the SRID set.

    A :class:`twin.points.LonLatPoint`: its coordinates, SRID and EWKB are read without GEOS calls.
    """
    try:
        lon, lat = float(lon), float(lat)
    except (TypeError, ValueError):
        raise InvalidInput("lon and lat must be numbers") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInput(f"({lon}, {lat}) is not a longitude/latitude pair")
    return lonlat_point(lon, lat)


def area_containing(geom: GEOSGeometry, level: int) -> AdminArea | None:
    """The admin area of ``level`` covering the geometry's representative point."""
    point = geom if geom.geom_type == "Point" else geom.point_on_surface
    if point.srid is None:
        point.srid = 4326
    return AdminArea.objects.filter(level=level, geom__covers=point).order_by("code").first()


def agencies_for(ward: AdminArea | None, province: AdminArea | None, category: str | None = None) -> list[Agency]:
    """Agencies responsible for a place, most specific first.

    The chain (data, not code): agencies of the ward handling the category,
    then of the province handling it, then the ward's default handler, then
    the province's default handler.
    """
    chain: list[Agency] = []
    areas = [a for a in (ward, province) if a is not None]
    wanted = [category] if category else []
    for match in (wanted, [DEFAULT_HANDLER]):
        if not match and category:
            continue
        for area in areas:
            query = Agency.objects.filter(jurisdiction=area)
            if match:
                query = query.filter(categories__overlap=match)
            for agency in query.order_by("code"):
                if agency not in chain:
                    chain.append(agency)
    return chain


def resolve_point(lon: float, lat: float, category: str | None = None) -> PointResolution:
    point = make_point(lon, lat)
    ward = area_containing(point, AdminLevel.WARD)
    province = ward.parent if ward and ward.parent and ward.parent.level == AdminLevel.PROVINCE else None
    if province is None:
        province = area_containing(point, AdminLevel.PROVINCE)
    return PointResolution(ward=ward, province=province, agencies=agencies_for(ward, province, category))


__all__ = ["PointResolution", "agencies_for", "area_containing", "make_point", "resolve_point"]
