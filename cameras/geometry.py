# SPDX-License-Identifier: AGPL-3.0-or-later
"""Camera geometry: the field of view on the ground, and pixels → ground.

Both work in a local east/north frame in metres around the camera (an
azimuthal equidistant projection centred on it), because a homography is a
plane-to-plane map and degrees of longitude and latitude are not the same
length at 16° N. The ground frame is converted back to EPSG:4326 last.

>>> fov = fov_polygon(107.5959, 16.4624, heading_deg=90, fov_deg=60, range_m=100)
>>> fov.geom_type, len(fov.exterior.coords) > 10
('Polygon', True)
>>> round(geodesic_area_m2(fov))   # π·100²/6 = 5236 for the true arc; 5° chords cut a little
5229
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import Polygon

GEOD = Geod(ellps="WGS84")


def local_transformer(lon: float, lat: float) -> tuple[Transformer, Transformer]:
    """(to local metres, back to lon/lat) around ``(lon, lat)``."""
    proj = f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m +no_defs"
    return (Transformer.from_crs("EPSG:4326", proj, always_xy=True),
            Transformer.from_crs(proj, "EPSG:4326", always_xy=True))


def fov_polygon(lon: float, lat: float, *, heading_deg: float, fov_deg: float, range_m: float,
                step_deg: float = 5.0) -> Polygon:
    """The ground sector a camera sees: apex at the camera, arc at ``range_m``.

    Points on the arc are geodesic destinations (``Geod.fwd``), so the range
    is true metres in every direction. A 360° camera gives a disc.

    >>> p = fov_polygon(107.0, 16.0, heading_deg=0, fov_deg=90, range_m=50)
    >>> round(max(y for _, y in p.exterior.coords) - 16.0, 5)   # 50 m north ≈ 0.00045°
    0.00045
    """
    if not (0 < fov_deg <= 360 and range_m > 0):
        raise ValueError("fov_deg must be in (0, 360] and range_m > 0")
    steps = max(2, int(np.ceil(fov_deg / step_deg)) + 1)
    azimuths = np.linspace(heading_deg - fov_deg / 2, heading_deg + fov_deg / 2, steps)
    lons, lats, _ = GEOD.fwd(np.full(steps, lon), np.full(steps, lat), azimuths, np.full(steps, range_m))
    arc = list(zip(lons.tolist(), lats.tolist()))
    ring = arc if fov_deg >= 360 else [(lon, lat), *arc]
    return shapely.make_valid(Polygon(ring)) if fov_deg >= 360 else Polygon([*ring, (lon, lat)])


def geodesic_area_m2(polygon: Polygon) -> float:
    """True area in m² (for tests and the FOV layer's properties)."""
    area, _ = GEOD.geometry_area_perimeter(polygon)
    return abs(area)


def bearing_deg(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Compass bearing from point 1 to point 2, degrees in [0, 360).

    >>> round(bearing_deg(107.0, 16.0, 107.0, 16.1))
    0
    """
    azimuth, _, _ = GEOD.inv(lon1, lat1, lon2, lat2)
    return azimuth % 360.0


@dataclass(frozen=True)
class GroundMapping:
    """A homography from image pixels to the ground, fitted to four (or more) point pairs.

    ``image_points`` are pixel coordinates in the camera's full-resolution
    frame; ``ground_points`` their lon/lat. Distances and speeds are computed
    in the local metre frame; positions are returned as lon/lat.
    """

    image_points: tuple[tuple[float, float], ...]
    ground_points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if len(self.image_points) < 4 or len(self.image_points) != len(self.ground_points):
            raise ValueError("calibration needs at least four image points with as many ground points")

    @cached_property
    def _frames(self) -> tuple[Transformer, Transformer]:
        lon, lat = np.mean(np.asarray(self.ground_points, dtype=float), axis=0)
        return local_transformer(float(lon), float(lat))

    @cached_property
    def matrix(self) -> np.ndarray:
        """3×3 image → local metres; raises ``ValueError`` for a degenerate calibration."""
        import cv2

        to_local, _ = self._frames
        gx, gy = to_local.transform(*np.asarray(self.ground_points, dtype=float).T)
        src = np.asarray(self.image_points, dtype=np.float64)
        dst = np.column_stack([gx, gy]).astype(np.float64)
        matrix, _ = cv2.findHomography(src, dst, 0)
        if matrix is None or not np.isfinite(matrix).all() or abs(np.linalg.det(matrix)) < 1e-12:
            raise ValueError("calibration points are degenerate (three in a line, or repeated)")
        return matrix

    def to_metres(self, points: Sequence[tuple[float, float]] | np.ndarray) -> np.ndarray:
        """Pixels (N×2) → local east/north metres (N×2)."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 1, 2)
        if not len(pts):
            return np.zeros((0, 2))
        import cv2

        return cv2.perspectiveTransform(pts, self.matrix).reshape(-1, 2)

    def to_lonlat(self, points: Sequence[tuple[float, float]] | np.ndarray) -> np.ndarray:
        """Pixels (N×2) → lon/lat (N×2)."""
        metres = self.to_metres(points)
        if not len(metres):
            return metres
        _, back = self._frames
        lon, lat = back.transform(metres[:, 0], metres[:, 1])
        return np.column_stack([lon, lat])

    def distance_m(self, a: tuple[float, float], b: tuple[float, float]) -> float:
        """Ground distance between two pixels, metres."""
        pa, pb = self.to_metres([a, b])
        return float(np.hypot(*(pa - pb)))


__all__ = ["GEOD", "GroundMapping", "bearing_deg", "fov_polygon", "geodesic_area_m2", "local_transformer"]
