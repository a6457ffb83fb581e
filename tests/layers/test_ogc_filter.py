# SPDX-License-Identifier: AGPL-3.0-or-later
"""CQL2 filtering (OGC API – Features Part 3): text and JSON, checked against independent SQL."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from layers.cql import parse_filter
from layers.errors import InvalidInput, NotSupported
from layers.registry import derive_queryables
from tests.layers.ogc_fixtures import *  # noqa: F403
from tests.layers.ogc_fixtures import api_get, json_of, sql_count

ROAD_FIELDS = {q.name: q for q in derive_queryables("road")}
CITADEL = "POLYGON((107.570 16.460, 107.590 16.460, 107.590 16.480, 107.570 16.480, 107.570 16.460))"


def matched(client, slug: str, cql: str, lang: str = "cql2-text", token: str | None = None, **extra) -> int:
    query = f"filter={quote(cql)}&filter-lang={lang}&limit=1" + "".join(f"&{k}={quote(v)}" for k, v in extra.items())
    response = api_get(client, f"/collections/{slug}/items?{query}", token)
    assert response.status_code == 200, response.content[:400]
    return json_of(response)["numberMatched"]


def count(where: str, params: list | None = None, slug: str = "hue-roads") -> int:
    return sql_count("SELECT count(*) FROM twin_feature f JOIN twin_layer l ON l.id = f.layer_id "
                     f"WHERE l.slug = %s AND ({where})", [slug, *(params or [])])


# --- the translator alone (no database) ---

def test_literals_are_bound_parameters_never_sql_text():
    fragment = parse_filter("name = 'x\\); DROP TABLE twin_feature; --'", None, None, ROAD_FIELDS)
    assert "DROP" not in fragment.sql and fragment.params == ("x\\); DROP TABLE twin_feature; --",)


def test_unknown_properties_are_refused_before_any_sql():
    with pytest.raises(InvalidInput, match="not a queryable"):
        parse_filter("secret_column = 1", None, None, ROAD_FIELDS)


def test_values_must_have_the_queryable_type():
    with pytest.raises(InvalidInput, match="mixes a number and a string"):
        parse_filter("lanes = 'two'", None, None, ROAD_FIELDS)


@pytest.mark.parametrize("cql", ["lanes + 1 = 3", "A_CONTAINS(name, ('a'))", "name T_MEETS TIMESTAMP('2025-01-01T00:00:00Z')",
                                 "RELATE(geometry, POINT(107 16), 'T********')"])
def test_operators_outside_the_whitelist_are_not_supported(cql):
    with pytest.raises(InvalidInput):
        parse_filter(cql, None, None, ROAD_FIELDS)


def test_unsupported_functions_name_the_problem():
    with pytest.raises(NotSupported, match="CASEI"):
        parse_filter("upper(name) = 'A'", None, None, ROAD_FIELDS)


# --- against PostGIS ---

@pytest.mark.django_db
@pytest.mark.parametrize("cql, where, params", [
    ("lanes = 2", "(f.properties->>'lanes')::int = 2", []),
    ("lanes >= 2 AND highway <> 'residential'", "(f.properties->>'lanes')::int >= 2 AND f.properties->>'highway' <> 'residential'", []),
    ("highway = 'primary' OR highway = 'secondary'", "f.properties->>'highway' IN ('primary', 'secondary')", []),
    ("NOT (oneway = 0)", "(f.properties->>'oneway')::int <> 0", []),
    ("name LIKE 'Lê%'", "f.name LIKE 'Lê%%'", []),
    ("CASEI(name) LIKE CASEI('%huế%')", "lower(f.name) LIKE '%%huế%%'", []),
    ("highway IN ('primary', 'trunk', 'secondary')", "f.properties->>'highway' IN ('primary', 'trunk', 'secondary')", []),
    ("length_m BETWEEN 100 AND 200", "(f.properties->>'length_m')::float BETWEEN 100 AND 200", []),
    ("maxspeed_kmh IS NULL", "f.properties->'maxspeed_kmh' IS NULL", []),
    ("name IS NOT NULL AND name <> ''", "f.name <> ''", []),
    (f"S_INTERSECTS(geometry, {CITADEL})", "ST_Intersects(f.geom, ST_GeomFromText(%s, 4326))", [CITADEL]),
    (f"S_WITHIN(geometry, {CITADEL})", "ST_Within(f.geom, ST_GeomFromText(%s, 4326))", [CITADEL]),
    (f"S_DISJOINT(geometry, {CITADEL}) AND lanes = 2",
     "NOT ST_Intersects(f.geom, ST_GeomFromText(%s, 4326)) AND (f.properties->>'lanes')::int = 2", [CITADEL]),
    ("NOT (highway = 'residential' OR highway = 'service')",
     "NOT (f.properties->>'highway' IN ('residential', 'service'))", []),
    (" OR ".join(f"lanes = {i}" for i in range(1, 300)), "(f.properties->>'lanes')::int BETWEEN 1 AND 299", []),
    ("BBOX(geometry, 107.57, 16.46, 107.59, 16.48)", "ST_Intersects(f.geom, ST_MakeEnvelope(107.57, 16.46, 107.59, 16.48, 4326))", []),
])
def test_cql2_text_matches_the_same_condition_in_sql(client, cql, where, params):
    assert matched(client, "hue-roads", cql) == count(where, params)


@pytest.mark.django_db
@pytest.mark.parametrize("cql, where, params", [
    ({"op": "=", "args": [{"property": "lanes"}, 2]}, "(f.properties->>'lanes')::int = 2", []),
    ({"op": "and", "args": [{"op": ">", "args": [{"property": "length_m"}, 500]},
                            {"op": "like", "args": [{"property": "highway"}, "%ary"]}]},
     "(f.properties->>'length_m')::float > 500 AND f.properties->>'highway' LIKE '%%ary'", []),
    ({"op": "in", "args": [{"property": "highway"}, ["primary", "trunk"]]},
     "f.properties->>'highway' IN ('primary', 'trunk')", []),
    ({"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [107.57, 16.46, 107.59, 16.48]}]},
     "ST_Intersects(f.geom, ST_MakeEnvelope(107.57, 16.46, 107.59, 16.48, 4326))", []),
    ({"op": "s_contains", "args": [{"type": "Polygon", "coordinates": [[[107.57, 16.46], [107.59, 16.46],
                                                                        [107.59, 16.48], [107.57, 16.46]]]},
                                   {"property": "geometry"}]},
     "ST_Contains(ST_GeomFromText('POLYGON((107.57 16.46, 107.59 16.46, 107.59 16.48, 107.57 16.46))', 4326), f.geom)",
     []),
])
def test_cql2_json_matches_the_same_condition_in_sql(client, cql, where, params):
    assert matched(client, "hue-roads", json.dumps(cql), "cql2-json") == count(where, params)


@pytest.mark.django_db
def test_spatial_literals_follow_filter_crs_axis_order(client):
    lat_lon = "POLYGON((16.460 107.570, 16.460 107.590, 16.480 107.590, 16.480 107.570, 16.460 107.570))"
    assert matched(client, "hue-roads", f"S_INTERSECTS(geometry, {lat_lon})",
                   **{"filter-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}) == count(
        "ST_Intersects(f.geom, ST_GeomFromText(%s, 4326))", [CITADEL])


@pytest.mark.django_db
def test_temporal_operators_on_the_temporal_property(client, report_layer):
    slug = report_layer.slug
    assert matched(client, slug, "T_AFTER(reported_at, TIMESTAMP('2025-07-08T08:00:00Z'))") == 2
    assert matched(client, slug, "T_BEFORE(reported_at, TIMESTAMP('2025-07-02T08:00:00Z'))") == 1
    assert matched(client, slug, "reported_at T_BEFORE TIMESTAMP('2025-07-02T08:00:00Z')") == 1
    assert matched(client, slug, "T_DURING(reported_at, INTERVAL('2025-07-02T00:00:00Z', '2025-07-04T00:00:00Z'))") == 2
    assert matched(client, slug, "reported_at >= TIMESTAMP('2025-07-05T08:00:00Z') AND category = 'flood'") == 3
    as_json = {"op": "t_intersects", "args": [{"property": "reported_at"},
                                              {"interval": ["2025-07-01T00:00:00Z", ".."]}]}
    assert matched(client, slug, json.dumps(as_json), "cql2-json") == 10


@pytest.mark.django_db
def test_filter_combines_with_bbox_and_property_filters(client):
    box = "107.57,16.46,107.59,16.48"
    assert matched(client, "hue-roads", "lanes = 2", bbox=box, highway="primary") == count(
        "(f.properties->>'lanes')::int = 2 AND f.properties->>'highway' = 'primary' AND "
        "ST_Intersects(f.geom, ST_MakeEnvelope(107.57, 16.46, 107.59, 16.48, 4326))")
