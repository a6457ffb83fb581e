# SPDX-License-Identifier: AGPL-3.0-or-later
"""The spatial query functions against the real Huế city, each checked by an independent SQL query.

The independent queries use the plain, unoptimised predicate (no KNN, no
subdivision, no materialised points), so a wrong optimisation shows up as
a difference.
"""
from __future__ import annotations

import pytest
import shapely
from django.db import connection

from tests.twin.factories import NGO_MON, make_layer, offset, sensor_row
from twin.errors import InvalidInput, NotFound
from twin.models import Feature
from twin.services import write_features
from twin.spatial import NearestQuery, WithinQuery, nearest, within
from twin.spatial_areas import (
    AlongQuery, AreaQuery, PolygonQuery, admin_area, along_line, in_admin_area, in_polygon,
)
from twin.spatial_input import parse_geometry
from twin.spatial_wards import WardQuery, per_ward

pytestmark = pytest.mark.django_db

# The Imperial City (Đại Nội) drawn by hand, lon/lat.
IMPERIAL_CITY = "POLYGON((107.5735 16.4720, 107.5815 16.4635, 107.5860 16.4680, 107.5780 16.4765, 107.5735 16.4720))"


def sql(text: str, params: list | tuple = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(text, params)
        return cursor.fetchall()


def external_ids(page) -> list[str]:
    found = Feature.objects.in_bulk([m.feature_id for m in page])
    return [found[m.feature_id].external_id for m in page]


# --- nearest / within -----------------------------------------------------------------------------

def test_nearest_k_hospitals_have_the_distances_of_an_independent_st_distance_query():
    found = nearest(NearestQuery(*NGO_MON, limit=5, layers=("hue-hospitals",)))
    expected = sql("SELECT f.external_id, ST_Distance(f.geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)"
                   "::geography) AS d FROM twin_feature f JOIN twin_layer l ON l.id = f.layer_id "
                   "WHERE l.slug = 'hue-hospitals' ORDER BY d LIMIT 5", NGO_MON)
    assert [f.external_id for f, _ in found] == [e for e, _ in expected]
    assert [d for _, d in found] == pytest.approx([d for _, d in expected], abs=0.01)


def test_within_radius_matches_every_hotel_closer_than_the_radius_in_metres():
    found = within(WithinQuery(*NGO_MON, radius_m=1500, layers=("hue-hotels",)))
    expected = sql("SELECT f.external_id FROM twin_feature f JOIN twin_layer l ON l.id = f.layer_id "
                   "WHERE l.slug = 'hue-hotels' AND ST_Distance(f.geom::geography, "
                   "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) <= 1500", NGO_MON)
    assert sorted(f.external_id for f, _ in found) == sorted(e for (e,) in expected)
    assert all(d <= 1500 for _, d in found)


# --- admin areas ------------------------------------------------------------------------------------

def test_hospitals_in_ward_19753_match_an_independent_intersects_query():
    page = in_admin_area(AreaQuery(layer="hue-hospitals", code="19753"))
    expected = sql("SELECT f.external_id FROM twin_feature f JOIN twin_layer l ON l.id = f.layer_id, "
                   "twin_adminarea a WHERE l.slug = 'hue-hospitals' AND a.level = 3 AND a.code = '19753' "
                   "AND ST_Intersects(f.geom, a.geom) ORDER BY f.external_id")
    assert external_ids(page) == [e for (e,) in expected]
    assert len(page) > 0 and not page.has_more


@pytest.mark.parametrize("predicate, test", [("intersects", "ST_Intersects(f.geom, a.geom)"),
                                             ("within", "ST_CoveredBy(f.geom, a.geom)")])
def test_buildings_in_a_ward_match_independent_sql_for_both_predicates(predicate, test):
    page = in_admin_area(AreaQuery(layer="hue-buildings", code="19753", predicate=predicate, limit=10_000))
    expected = sql("SELECT f.external_id FROM twin_feature f JOIN twin_layer l ON l.id = f.layer_id, "
                   f"twin_adminarea a WHERE l.slug = 'hue-buildings' AND a.level = 3 AND a.code = '19753' AND {test} "
                   "ORDER BY f.external_id")
    assert external_ids(page) == [e for (e,) in expected]


def test_area_pages_follow_each_other_without_gaps():
    first = in_admin_area(AreaQuery(layer="hue-buildings", code="19753", limit=100))
    second = in_admin_area(AreaQuery(layer="hue-buildings", code="19753", limit=100, offset=100))
    both = in_admin_area(AreaQuery(layer="hue-buildings", code="19753", limit=200))
    assert first.has_more and external_ids(first) + external_ids(second) == external_ids(both)


def test_a_province_code_selects_the_province():
    assert admin_area("46").level == 1
    with pytest.raises(NotFound):
        admin_area("99999")


def test_hostile_area_codes_are_refused_before_any_sql():
    for code in ("19753; DROP TABLE twin_feature", "", "x" * 30):
        with pytest.raises(InvalidInput):
            AreaQuery(layer="hue-hospitals", code=code)


# --- drawn polygons ---------------------------------------------------------------------------------

def test_buildings_in_a_drawn_polygon_match_an_independent_intersects_query():
    page = in_polygon(PolygonQuery(layer="hue-buildings", polygon=parse_geometry(IMPERIAL_CITY), limit=10_000))
    expected = sql("SELECT f.external_id FROM twin_feature f JOIN twin_layer l ON l.id = f.layer_id "
                   "WHERE l.slug = 'hue-buildings' AND ST_Intersects(f.geom, ST_GeomFromText(%s, 4326)) "
                   "ORDER BY f.external_id", [IMPERIAL_CITY])
    assert len(expected) > 50
    assert external_ids(page) == [e for (e,) in expected]


@pytest.mark.parametrize("text, message", [
    ("POLYGON((107.57 16.46, 107.59 16.48, 107.59 16.46, 107.57 16.48, 107.57 16.46))", "Self-intersection"),
    ("POLYGON((100 5, 112 5, 112 22, 100 5))", "km²"),
    ("POINT(107.57 16.46)", "Polygon or MultiPolygon"),
    ("SRID=3405;POLYGON((0 0, 1 0, 1 1, 0 0))", "EPSG:4326"),
    ("POLYGON((11967000 1856000, 11968000 1856000, 11968000 1857000, 11967000 1856000))", "lon/lat"),
    ('{"type": "Polygon", "coordinates": [[[107.57, 16.46]]]}', "GeoJSON"),
])
def test_bad_polygons_are_refused_with_the_reason(text, message):
    with pytest.raises(InvalidInput, match=message):
        PolygonQuery(layer="hue-buildings", polygon=parse_geometry(text))


# --- per ward -----------------------------------------------------------------------------------------

def test_per_ward_hospital_counts_add_up_to_the_layer_total():
    table = per_ward(WardQuery(layer="hue-hospitals"))
    assert len(table.rows) == 40
    assert table.outside == 0 and table.in_wards == table.total == Feature.objects.filter(
        layer__slug="hue-hospitals").count()


def test_per_ward_building_counts_and_mean_heights_match_independent_sql():
    table = per_ward(WardQuery(layer="hue-buildings", value="height_m", stats=("avg", "max")))
    expected = {code: (n, avg, top) for code, n, avg, top in sql(
        "SELECT a.code, count(f.id), avg(f.height_m), max(f.height_m) FROM twin_adminarea a "
        "JOIN twin_layer l ON l.slug = 'hue-buildings' LEFT JOIN twin_feature f ON f.layer_id = l.id "
        "AND ST_Covers(a.geom, ST_PointOnSurface(f.geom)) WHERE a.level = 3 GROUP BY a.code")}
    got = {r.code: (r.count, r.stats["avg"], r.stats["max"]) for r in table.rows}
    assert got.keys() == expected.keys()
    for code, (n, avg, top) in expected.items():
        assert got[code][0] == n
        assert got[code][1] == pytest.approx(avg) and got[code][2] == pytest.approx(top)
    assert table.in_wards == table.total


def test_per_ward_values_name_the_statistic_and_the_property():
    row = per_ward(WardQuery(layer="hue-buildings", value="height_m", stats=("sum",))).rows[0]
    assert set(row.values("height_m")) == {"count", "count_per_km2", "sum_height_m"}


def test_per_ward_refuses_statistics_without_a_property():
    with pytest.raises(InvalidInput):
        WardQuery(layer="hue-buildings", stats=("sum",))
    with pytest.raises(InvalidInput):
        WardQuery(layer="hue-buildings", value="height_m", stats=("median",))


# --- along a line ---------------------------------------------------------------------------------------

@pytest.fixture
def beside_a_line(hue):
    """Sensors at known positions beside a 1 km line running east from Ngọ Môn."""
    end = offset(NGO_MON, 90, 1000)
    layer = make_layer(city=hue)
    placed = {"at-100-north-20": (100, 0, 20), "at-400-south-45": (400, 180, 45), "at-900-north-5": (900, 0, 5),
              "at-500-north-80": (500, 0, 80)}
    rows = [sensor_row(name, *offset(offset(NGO_MON, 90, along), side, off))
            for name, (along, side, off) in placed.items()]
    write_features(layer, rows)
    return layer, shapely.LineString([NGO_MON, end])


def test_along_a_line_orders_by_position_and_measures_in_metres(beside_a_line):
    layer, line = beside_a_line
    page = along_line(AlongQuery(layer=layer.slug, line=line, buffer_m=50))
    assert external_ids(page) == ["at-100-north-20", "at-400-south-45", "at-900-north-5"]
    for match, (along, off) in zip(page, [(100, 20), (400, 45), (900, 5)]):
        assert match.values["along_m"] == pytest.approx(along, abs=1.0)
        assert match.values["distance_m"] == pytest.approx(off, abs=0.5)


def test_buildings_along_a_road_segment_match_independent_sql_in_order():
    road = Feature.objects.filter(layer__slug="hue-roads", name="Lê Lợi").order_by("external_id").first()
    line = shapely.from_wkt(road.geom.wkt)
    page = along_line(AlongQuery(layer="hue-buildings", line=line, buffer_m=40, limit=10_000))
    expected = sql("SELECT f.external_id FROM twin_feature f JOIN twin_layer l ON l.id = f.layer_id "
                   "WHERE l.slug = 'hue-buildings' AND ST_Distance(f.geom::geography, ST_GeomFromText(%s, 4326)"
                   "::geography) <= 40", [road.geom.wkt])
    assert sorted(external_ids(page)) == sorted(e for (e,) in expected)
    positions = [m.values["along_m"] for m in page]
    assert positions == sorted(positions)


@pytest.mark.parametrize("buffer_m", [-5, 0, 10_000])
def test_along_refuses_a_buffer_out_of_range(buffer_m):
    with pytest.raises(InvalidInput, match="buffer"):
        AlongQuery(layer="hue-buildings", line=shapely.LineString([NGO_MON, (107.58, 16.47)]), buffer_m=buffer_m)


def test_unknown_layers_are_not_found():
    with pytest.raises(NotFound):
        in_admin_area(AreaQuery(layer="no-such-layer", code="19753"))
