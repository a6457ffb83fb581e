# SPDX-License-Identifier: AGPL-3.0-or-later
"""Small factories for tests: explicit SRIDs, no hard-coded ids."""
from __future__ import annotations

import itertools

from pyproj import Geod
from shapely.geometry import Point

from twin.models import City, Layer
from twin.services import FeatureRow, LayerSpec, ensure_layer

_counter = itertools.count(1)
WGS84 = Geod(ellps="WGS84")
NGO_MON = (107.5786, 16.4679)  # the Ngọ Môn gate of the Imperial City, Huế


def make_layer(kind: str = "sensor", geometry_type: str = "Point", city: City | None = None, *,
               public: bool = False) -> Layer:
    n = next(_counter)
    return ensure_layer(LayerSpec(slug=f"test-{kind.replace('_', '-')}-{n}", title_vi=f"Lớp thử {n}",
                                  title_en=f"Test layer {n}", kind=kind, geometry_type=geometry_type,
                                  is_public=public), city=city)


def sensor_row(external_id: str, lon: float, lat: float, **props) -> FeatureRow:
    properties = {"sensor_type": "air_quality", "unit": "µg/m³", **props}
    return FeatureRow(external_id=external_id, geom=Point(lon, lat), properties=properties)


def offset(origin: tuple[float, float], azimuth_deg: float, metres: float) -> tuple[float, float]:
    """The lon/lat ``metres`` away from ``origin`` along ``azimuth_deg`` (geodesic)."""
    lon, lat, _ = WGS84.fwd(origin[0], origin[1], azimuth_deg, metres)
    return lon, lat
