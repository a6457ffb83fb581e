# SPDX-License-Identifier: AGPL-3.0-or-later
"""Helpers for the vector-tile tests: tile arithmetic, a real MVT decoder, SQL ground truth."""
from __future__ import annotations

import itertools
import math

import mapbox_vector_tile
from django.db import connection

from twin.models import Layer
from twin.services import LayerSpec, ensure_layer

NGO_MON = (107.5786, 16.4679)  # the Meridian Gate of the Huế citadel
EXTENT = 4096
_counter = itertools.count(1)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """The XYZ tile holding ``lon``/``lat`` at zoom ``z``."""
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def url(slug: str, tile: tuple[int, int, int], ext: str = "mvt") -> str:
    z, x, y = tile
    return f"/tiles/{slug}/{z}/{x}/{y}.{ext}"


def decode(content: bytes) -> dict:
    """Decode with mapbox-vector-tile, keeping tile coordinates (y down, 0..4096)."""
    return mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})


def features(response, slug: str) -> list[dict]:
    if response.status_code == 204:
        return []
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/vnd.mapbox-vector-tile"
    layers = decode(response.content)
    assert set(layers) <= {slug}
    return layers[slug]["features"] if layers else []


def inside(feature: dict) -> bool:
    """A point feature whose position lies in the tile proper (not in its buffer)."""
    x, y = feature["geometry"]["coordinates"]
    return 0 <= x < EXTENT and 0 <= y < EXTENT


def count_in_tile(layer: Layer, tile: tuple[int, int, int]) -> int:
    """Independent ground truth: features of ``layer`` within the tile envelope."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM twin_feature WHERE layer_id = %s AND "
                       "ST_Intersects(geom, ST_Transform(ST_TileEnvelope(%s, %s, %s), 4326))", [layer.pk, *tile])
        return cursor.fetchone()[0]


def ids_in_tile(layer: Layer, tile: tuple[int, int, int]) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT external_id FROM twin_feature WHERE layer_id = %s AND "
                       "ST_Intersects(geom, ST_Transform(ST_TileEnvelope(%s, %s, %s), 4326))", [layer.pk, *tile])
        return {row[0] for row in cursor.fetchall()}


def point_layer(*, public: bool = True, kind: str = "sensor") -> Layer:
    n = next(_counter)
    return ensure_layer(LayerSpec(slug=f"t-tiles-{n}", title_vi=f"Lớp thử tile {n}", title_en=f"Tile test {n}",
                                  kind=kind, geometry_type="Point", is_public=public,
                                  attribution="© CityTwin tests"))
