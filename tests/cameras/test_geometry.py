# SPDX-License-Identifier: AGPL-3.0-or-later
"""Field of view on the ground and the pixel → ground homography."""
from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from shapely.geometry import Point

from cameras.config import CameraConfig
from cameras.geometry import GEOD, GroundMapping, bearing_deg, fov_polygon, geodesic_area_m2
from tests.cameras.support import fixture_camera


def test_fov_polygon_is_a_sector_pointing_along_the_heading_with_its_arc_at_the_range():
    lon, lat = 107.5959, 16.4624
    fov = fov_polygon(lon, lat, heading_deg=133.6, fov_deg=40, range_m=150)
    assert fov.is_valid and fov.contains(Point(*GEOD.fwd(lon, lat, 133.6, 100)[:2]))
    assert not fov.contains(Point(*GEOD.fwd(lon, lat, 133.6 + 180, 50)[:2]))   # nothing behind the camera
    assert not fov.contains(Point(*GEOD.fwd(lon, lat, 133.6 + 30, 100)[:2]))   # outside the angle
    arc = [GEOD.inv(lon, lat, x, y)[2] for x, y in fov.exterior.coords[1:-2]]
    assert min(arc) == pytest.approx(150, abs=0.01) and max(arc) == pytest.approx(150, abs=0.01)
    assert geodesic_area_m2(fov) == pytest.approx(np.pi * 150 ** 2 * 40 / 360, rel=0.01)


def test_a_360_degree_camera_sees_a_disc():
    disc = fov_polygon(107.0, 16.0, heading_deg=0, fov_deg=360, range_m=30)
    assert disc.is_valid and geodesic_area_m2(disc) == pytest.approx(np.pi * 900, rel=0.01)


def test_homography_maps_the_calibration_points_onto_their_ground_points():
    cal = fixture_camera("cam-hungvuong-01")["config"]["calibration"]
    mapping = GroundMapping(tuple(map(tuple, cal["image_points"])), tuple(map(tuple, cal["ground_points"])))
    got = mapping.to_lonlat(cal["image_points"])
    for (lon, lat), (glon, glat) in zip(got, cal["ground_points"]):
        assert GEOD.inv(lon, lat, glon, glat)[2] < 0.05      # centimetres
    # The lane is 7.5 m wide at both calibrated rows; 80 m lie between them.
    assert mapping.distance_m((44, 220), (234, 220)) == pytest.approx(7.5, abs=0.05)
    assert mapping.distance_m((44, 220), (196, 60)) == pytest.approx(80, abs=0.5)


def test_degenerate_calibration_is_refused():
    with pytest.raises(ValueError, match="degenerate"):
        GroundMapping(((0, 0), (1, 1), (2, 2), (3, 3)),
                      ((107.0, 16.0), (107.0001, 16.0), (107.0002, 16.0), (107.0003, 16.0))).matrix


def test_bearing_of_the_hung_vuong_segment_is_the_camera_heading():
    cam = fixture_camera("cam-hungvuong-01")
    assert bearing_deg(107.5959093, 16.4624455, 107.5970466, 16.4614014) == pytest.approx(cam["heading_deg"], abs=0.1)


@pytest.mark.parametrize("bad, message", [
    ({"lines": [{"name": "a", "points": [[0, 0], [1, 1]]}, {"name": "a", "points": [[0, 0], [1, 1]]}]}, "unique"),
    ({"zones": [{"name": "z", "polygon": [[0, 0], [1, 0], [1, 1]], "rule": "wrong_way"}]}, "expected_direction"),
    ({"lanes": [{"name": "l", "polygon": [[0, 0], [1, 0], [1, 1]], "line": "nope"}]}, "unknown line"),
    ({"calibration": {"image_points": [[0, 0]] * 4, "ground_points": [[107, 16]] * 3}}, "at least 4|pair up"),
    ({"colour": "red"}, "Extra inputs"),
])
def test_invalid_camera_configs_are_refused_with_a_reason(bad, message):
    with pytest.raises(ValidationError, match=message):
        CameraConfig.model_validate(bad)
