# SPDX-License-Identifier: AGPL-3.0-or-later
"""Nearest-N and within-radius in true metres, and point-in-ward resolution."""
from __future__ import annotations

import pytest

from tests.twin.factories import NGO_MON, make_layer, offset, sensor_row
from twin.errors import InvalidInput
from twin.services import resolve_point, write_features
from twin.spatial import NearestQuery, WithinQuery, nearest, within

# Geodesic distances (metres) from Ngọ Môn along various azimuths.
PLACED = {"n100": (0, 100.0), "e250": (90, 250.0), "s499": (180, 499.0), "w501": (270, 501.0), "ne2000": (45, 2000.0)}


@pytest.fixture
def ring(db):
    layer = make_layer()
    rows = [sensor_row(name, *offset(NGO_MON, azimuth, metres)) for name, (azimuth, metres) in PLACED.items()]
    write_features(layer, rows)
    return layer


def test_nearest_orders_by_true_distance_in_metres(ring):
    found = nearest(NearestQuery(*NGO_MON, limit=3, layers=(ring.slug,)))
    assert [f.external_id for f, _ in found] == ["n100", "e250", "s499"]
    for feature, distance in found:
        assert distance == pytest.approx(PLACED[feature.external_id][1], abs=0.5)


def test_within_radius_is_in_metres_not_degrees(ring):
    found = within(WithinQuery(*NGO_MON, radius_m=500, layers=(ring.slug,)))
    assert [f.external_id for f, _ in found] == ["n100", "e250", "s499"]
    assert len(within(WithinQuery(*NGO_MON, radius_m=502, layers=(ring.slug,)))) == 4


def test_nearest_can_be_capped_by_a_maximum_distance(ring):
    found = nearest(NearestQuery(*NGO_MON, limit=10, layers=(ring.slug,), max_distance_m=300))
    assert [f.external_id for f, _ in found] == ["n100", "e250"]


@pytest.mark.parametrize("build", [
    lambda: NearestQuery(200, 16, 3), lambda: NearestQuery(107.5, 16.4, 0), lambda: NearestQuery(107.5, 16.4, 5000),
    lambda: WithinQuery(107.5, 16.4, 0), lambda: WithinQuery(107.5, 16.4, 10**7), lambda: WithinQuery("x", 16, 10),
])
def test_hostile_query_parameters_are_refused(build):
    with pytest.raises(InvalidInput):
        build()


@pytest.mark.django_db
@pytest.mark.parametrize("lon, lat, ward_code, ward_name", [
    (107.5786, 16.4679, "19753", "Phú Xuân"),   # Ngọ Môn gate
    (107.5447, 16.4537, "19774", "Kim Long"),   # Thiên Mụ pagoda
])
def test_points_resolve_to_their_ward_and_province(lon, lat, ward_code, ward_name):
    place = resolve_point(lon, lat)
    assert (place.ward.code, place.ward.name_vi) == (ward_code, ward_name)
    assert place.province.code == "46"
    assert place.agencies, "every point in the city has a responsible agency"


@pytest.mark.django_db
def test_points_outside_any_ward_resolve_to_nothing():
    place = resolve_point(106.0, 10.0)
    assert place.ward is None
