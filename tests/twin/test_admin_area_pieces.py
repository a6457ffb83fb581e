# SPDX-License-Identifier: AGPL-3.0-or-later
"""Areas' outline pieces: kept by the database on every write, and routing on them equals routing on the outlines."""
from __future__ import annotations

import random

import pytest
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.db import connection

from ingestion.routing import Candidate, ward_candidates_many
from twin.models import AdminArea, AdminAreaPiece, AdminLevel

# The routing query as it was, on the whole outlines: the reference the pieces must reproduce.
_ON_OUTLINES = """
SELECT p.i, a.id, a.code, ST_Covers(a.geom, p.g),
       CASE WHEN ST_Covers(a.geom, p.g) THEN 0 ELSE ST_Distance(a.geom::geography, p.g::geography) END
  FROM (SELECT u.i, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326) AS g
          FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS u(lon, lat, i)) AS p
  JOIN twin_adminarea a ON a.level = %s AND ST_DWithin(a.geom::geography, p.g::geography, %s)
 ORDER BY p.i, a.code
"""


def _on_outlines(points: list[Point], tolerance_m: float) -> list[list[Candidate]]:
    out: list[list[Candidate]] = [[] for _ in points]
    with connection.cursor() as cursor:
        cursor.execute(_ON_OUTLINES, [[p.x for p in points], [p.y for p in points], AdminLevel.WARD, tolerance_m])
        for i, pk, code, covers, distance in cursor.fetchall():
            out[i - 1].append(Candidate(code=code, area_id=pk, covers=covers, distance_m=float(distance)))
    return out


def _probe_points(wards: list[AdminArea], seed: int = 7) -> list[Point]:
    """Inside, on the outline (vertices), and 3, 8 and 30 m off it: the cases routing must decide the same."""
    rng = random.Random(seed)
    points = []
    for ward in wards:
        ring = ward.geom[0].exterior_ring.coords
        for _ in range(3):
            x, y = ring[rng.randrange(len(ring))]
            points.append(Point(x, y, srid=4326))                              # on the boundary
            for metres in (3, 8, 30):                                          # just off it, either side
                angle = rng.uniform(0, 6.283)
                dx, dy = metres / 111_320 * 1.04, metres / 110_574
                points.append(Point(x + dx * (1 if angle < 3.14 else -1), y + dy * (1 if angle % 3.14 < 1.57 else -1),
                                    srid=4326))
        inside = ward.geom.point_on_surface
        points.append(Point(inside.x, inside.y, srid=4326))
    return points


@pytest.mark.django_db
def test_the_pieces_of_each_ward_cover_exactly_its_outline():
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT a.code, ST_Area(ST_SymDifference(a.geom, ST_Union(s.geom))) / ST_Area(a.geom),
                   max(ST_NPoints(s.geom))
              FROM twin_adminarea a JOIN twin_adminareapiece s ON s.area_id = a.id
             WHERE a.level = %s GROUP BY a.id, a.code, a.geom""", [AdminLevel.WARD])
        rows = cursor.fetchall()
    assert len(rows) == AdminArea.objects.filter(level=AdminLevel.WARD).count() > 0
    assert all(ratio < 1e-9 for _, ratio, _ in rows), [r for r in rows if r[1] >= 1e-9][:3]
    assert max(n for _, _, n in rows) <= 96


@pytest.mark.django_db
def test_routing_candidates_on_pieces_equal_those_on_the_whole_outlines():
    wards = list(AdminArea.objects.filter(level=AdminLevel.WARD).order_by("code"))
    points = _probe_points(wards)
    ours, reference = ward_candidates_many(points, 10.0), _on_outlines(points, 10.0)
    assert len(points) > 500
    for point, got, expected in zip(points, ours, reference, strict=True):
        assert [(c.code, c.covers) for c in got] == [(c.code, c.covers) for c in expected], point.coords
        # PostGIS's geodesic distance is iterative: to a piece and to the whole outline it agrees to ~10 µm
        assert all(abs(a.distance_m - b.distance_m) < 1e-3 for a, b in zip(got, expected)), (point.coords, got,
                                                                                              expected)
    assert any(len(c) > 1 for c in ours) and any(not c for c in ours)   # boundaries and outside were probed


@pytest.mark.django_db
def test_the_database_keeps_the_pieces_on_insert_update_and_delete():
    square = MultiPolygon(Polygon.from_bbox((107.50, 16.40, 107.51, 16.41)), srid=4326)
    area = AdminArea.objects.create(level=AdminLevel.WARD, code="T-PIECES", name_vi="Thử", geom=square)
    assert list(AdminAreaPiece.objects.filter(area_id=area.pk).values_list("level", flat=True)) == [AdminLevel.WARD]

    moved = MultiPolygon(Polygon.from_bbox((107.52, 16.42, 107.53, 16.43)), srid=4326)
    AdminArea.objects.filter(pk=area.pk).update(geom=moved)
    pieces = list(AdminAreaPiece.objects.filter(area_id=area.pk))
    assert len(pieces) == 1 and pieces[0].geom.equals(moved[0])

    AdminArea.objects.filter(pk=area.pk).delete()
    assert not AdminAreaPiece.objects.filter(area_id=area.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("tables", ["twin_adminarea", "twin_adminareapiece, twin_adminarea"])
def test_truncating_the_areas_empties_the_pieces_even_when_both_are_named(tables):
    """Django's flush names every table in one TRUNCATE; the trigger must not trip over it (rolled back after)."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} CASCADE")
    assert not AdminAreaPiece.objects.exists()
