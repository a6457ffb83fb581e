# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin.points.LonLatPoint`` answers like the GEOS point it is, and never with stale coordinates."""
from __future__ import annotations

import copy
import pickle

import pytest
from django.contrib.gis.geos import Point, Polygon

from twin.points import LonLatPoint, lonlat_point
from twin.services import make_point


@pytest.fixture
def pair():
    return lonlat_point(107.5812, 16.4637), Point(107.5812, 16.4637, srid=4326)


def test_make_point_gives_a_lonlat_point():
    assert isinstance(make_point("107.58", "16.46"), LonLatPoint)


def test_coordinates_srid_and_binary_forms_equal_those_of_geos(pair):
    fast, plain = pair
    assert (fast.x, fast.y, fast.coords, fast.tuple, fast.srid) == (plain.x, plain.y, plain.coords, plain.tuple, 4326)
    assert bytes(fast.ewkb) == bytes(plain.ewkb)
    assert bytes(fast.wkb) == bytes(plain.wkb)
    assert fast.ewkt == plain.ewkt and fast.empty is False and fast.hasz is False
    assert fast.equals(plain) and fast == plain


def test_spatial_predicates_use_the_real_geometry(pair):
    fast, _ = pair
    square = Polygon(((107, 16), (108, 16), (108, 17), (107, 17), (107, 16)), srid=4326)
    assert square.contains(fast) and fast.within(square)


@pytest.mark.parametrize("change", [
    lambda p: setattr(p, "x", 1.0), lambda p: setattr(p, "y", 2.0), lambda p: setattr(p, "coords", (1.0, 2.0)),
    lambda p: p.__setitem__(0, 1.0), lambda p: setattr(p, "srid", 3857),
])
def test_a_change_turns_it_into_a_plain_point_with_the_new_values(change):
    point = lonlat_point(107.5, 16.4)
    change(point)
    assert type(point) is Point
    assert (point.x, point.y) != (107.5, 16.4) or point.srid == 3857


def test_an_in_place_transform_turns_it_into_a_plain_point():
    point = lonlat_point(107.5, 16.4)
    point.transform(32648)
    assert type(point) is Point and point.srid == 32648 and point.x > 100_000


def test_a_transformed_clone_leaves_the_original_as_it_was():
    point = lonlat_point(107.5, 16.4)
    moved = point.transform(32648, clone=True)
    assert moved.srid == 32648 and (point.x, point.y, point.srid) == (107.5, 16.4, 4326)
    assert isinstance(point, LonLatPoint)


def test_copies_and_pickles_are_plain_points_with_the_same_coordinates():
    point = lonlat_point(107.5, 16.4)
    for other in (copy.copy(point), copy.deepcopy(point), pickle.loads(pickle.dumps(point)), point.clone()):
        assert type(other) is Point and other.coords == (107.5, 16.4) and other.srid == 4326
