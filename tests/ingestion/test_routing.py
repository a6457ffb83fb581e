# SPDX-License-Identifier: AGPL-3.0-or-later
"""Routing: ward, province and agency through a chain held as data; deterministic on real Huế ward borders."""
from __future__ import annotations

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from pydantic import ValidationError

from ingestion.routing import Router, RoutingConfig
from ingestion.rules.engine import configured, evaluate
from tests.ingestion.rules_support import events_of, make_device, minutes, reading
from tests.twin.factories import offset
from twin.models import AdminArea, AdminLevel
from twin.services import resolve_point

pytestmark = pytest.mark.django_db

HUE = RoutingConfig(fallback_agency="hue-ioc", city_categories={"device_offline": "hue-ioc"}, boundary_tolerance_m=10)
OFFSHORE = (107.75, 16.62)          # the sea off Thuận An: no ward, no province


def shared_vertices(code_a: str, code_b: str) -> list[tuple[float, float, list[str]]]:
    """Vertices of the border two real wards share, with every ward that covers each one."""
    with connection.cursor() as cursor:
        cursor.execute("""
            WITH border AS (
              SELECT ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom)) AS g
                FROM twin_adminarea a, twin_adminarea b
               WHERE a.level = 3 AND b.level = 3 AND a.code = %s AND b.code = %s),
            pts AS (SELECT DISTINCT (ST_DumpPoints(g)).geom AS p FROM border)
            SELECT ST_X(p), ST_Y(p), (SELECT array_agg(w.code ORDER BY w.code) FROM twin_adminarea w
                                       WHERE w.level = 3 AND ST_Covers(w.geom, p))
              FROM pts ORDER BY ST_X(p), ST_Y(p)""", [code_a, code_b])
        return cursor.fetchall()


def easternmost_ward_vertex() -> tuple[str, float, float]:
    with connection.cursor() as cursor:
        cursor.execute("""SELECT code, ST_X(p), ST_Y(p) FROM (
                            SELECT code, (ST_DumpPoints(geom)).geom AS p FROM twin_adminarea WHERE level = 3) v
                          ORDER BY ST_X(p) DESC, code LIMIT 1""")
        return cursor.fetchone()


def test_a_point_well_inside_a_ward_has_one_candidate_and_agrees_with_the_core_resolver():
    route = Router(HUE).route(Point(107.5786, 16.4679, srid=4326), "fire")     # Ngọ Môn
    core = resolve_point(107.5786, 16.4679, "fire")
    assert (route.ward, route.province, route.agency) == (core.ward, core.province, core.agencies[0])
    assert route.as_payload() | {"distances_m": None} == {
        "ward": "19753", "ward_name": "Phú Xuân", "province": "46", "candidates": ["19753"], "distances_m": None,
        "rule": "covers", "tolerance_m": 10.0, "step": "province_category", "agency": "hue-pccc-cnch"}


def test_a_vertex_of_the_real_phu_xuan_kim_long_border_goes_to_the_lowest_code_and_records_both():
    x, y, covering = next(v for v in shared_vertices("19753", "19774") if len(v[2]) == 2)
    assert covering == ["19753", "19774"]                      # on the border: covered by both wards
    router = Router(HUE)
    routes = [router.route(Point(x, y, srid=4326), "no-such-category") for _ in range(3)]
    assert {r.ward.code for r in routes} == {"19753"}
    payload = routes[0].as_payload()
    assert (payload["rule"], payload["candidates"]) == ("covers_lowest_code", ["19753", "19774"])
    assert payload["agency"] == "ubnd-19753" and payload["step"] == "ward_default"
    assert resolve_point(x, y).ward.code == "19753"            # the core picks the same ward


def test_an_event_raised_on_the_border_records_its_routing_choice_in_the_payload():
    x, y, _ = next(v for v in shared_vertices("19753", "19774") if len(v[2]) == 2)
    panel = make_device(at=(x, y), sensor_type="fire_alarm", unit="state")
    with configured({"routing": HUE.model_dump()}):
        evaluate([reading(panel, minutes(0), {"alarm": True}, stream="fire")])
    [event] = events_of(panel)
    assert event.ward.code == "19753" and event.agency.code == "hue-pccc-cnch"
    routing = event.payload["routing"]
    assert (routing["ward"], routing["candidates"], routing["rule"]) == ("19753", ["19753", "19774"],
                                                                         "covers_lowest_code")


def test_a_point_just_inside_one_ward_near_the_border_keeps_its_ward_and_lists_the_neighbour():
    vertices = [v for v in shared_vertices("19753", "19774") if len(v[2]) == 2]
    (x1, y1, _), (x2, y2, _) = vertices[0], vertices[1]
    mid = Point((x1 + x2) / 2, (y1 + y2) / 2, srid=4326)
    route = None
    for azimuth in range(0, 360, 30):                          # step 3 m off the border, to whichever side is Kim Long
        lon, lat = offset((mid.x, mid.y), azimuth, 3)
        candidate = Router(HUE).route(Point(lon, lat, srid=4326), "fire")
        if candidate.ward.code == "19774" and candidate.rule == "covers":
            route = candidate
            break
    assert route is not None, "no point 3 m into Kim Long found"
    payload = route.as_payload()
    assert payload["candidates"] == ["19753", "19774"] and payload["distances_m"]["19753"] <= 3.5
    assert payload["distances_m"]["19774"] == 0


def test_a_point_just_outside_every_ward_goes_to_the_nearest_ward_within_tolerance():
    code, x, y = easternmost_ward_vertex()
    lon, lat = offset((x, y), 90, 5)
    route = Router(HUE).route(Point(lon, lat, srid=4326), "fire")
    assert (route.ward.code, route.rule) == (code, "nearest_within_tolerance")
    assert route.as_payload()["distances_m"][code] == pytest.approx(5, abs=0.5)
    assert route.province.code == "46" and route.agency.code == "hue-pccc-cnch"


def test_beyond_the_tolerance_and_outside_every_area_the_city_fallback_takes_it():
    route = Router(HUE).route(Point(*OFFSHORE, srid=4326), "fire")
    assert (route.ward, route.province, route.rule) == (None, None, "outside")
    assert (route.agency.code, route.step) == ("hue-ioc", "city_fallback")
    assert Router(RoutingConfig()).route(Point(*OFFSHORE, srid=4326), "fire").agency is None


def test_the_chain_is_data_reordering_it_changes_who_is_asked_first():
    ngo_mon = Point(107.5786, 16.4679, srid=4326)
    assert Router(HUE).route(ngo_mon, "device_offline").agency.code == "hue-ioc"
    ward_first = RoutingConfig(chain=["ward_default", "province_category"], fallback_agency="hue-ioc")
    route = Router(ward_first).route(ngo_mon, "fire")
    assert (route.agency.code, route.step) == ("ubnd-19753", "ward_default")


def test_every_ward_routes_like_the_core_resolver_for_every_chain_step_it_shares():
    router = Router(RoutingConfig(chain=["ward_category", "province_category", "ward_default", "province_default"]))
    for ward in AdminArea.objects.filter(level=AdminLevel.WARD, parent__code="46"):
        point = ward.geom.point_on_surface
        for category in ("fire", "air_quality", "heritage", "unknown"):
            core = resolve_point(point.x, point.y, category)
            route = router.route(point, category)
            assert (route.ward, route.agency) == (core.ward, core.agencies[0]), (ward.code, category)


@pytest.mark.parametrize("bad", [{"chain": ["ward_default", "ward_default"]}, {"chain": ["zone_contact"]},
                                 {"chain": []}, {"boundary_tolerance_m": -1}, {"fallback": "hue-ioc"}])
def test_bad_routing_configuration_is_refused(bad):
    with pytest.raises(ValidationError):
        RoutingConfig(**bad)


def test_a_fallback_agency_that_is_not_loaded_routes_nowhere_and_says_so(caplog):
    route = Router(RoutingConfig(fallback_agency="no-such-agency")).route(Point(*OFFSHORE, srid=4326), "fire")
    assert route.agency is None and "not loaded" in caplog.text
