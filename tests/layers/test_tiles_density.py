# SPDX-License-Identifier: AGPL-3.0-or-later
"""Dense tiles are reduced, never cut: clusters whose counts add up, thinned lines and polygons.

A 4,900-point grid with the feature cap at 100 and the live limit at 1,000
exercises every path on small data: precomputed clusters (the overview),
clusters aggregated live, and raw points. Every tile is decoded with a real
MVT decoder and checked against an independent SQL count.
"""
from __future__ import annotations

import math

import pytest
import shapely
from django.core.cache import caches
from django.db import connection, transaction

import layers.tilerender as tilerender
from layers.tilecache import layer_with_version
from layers.tileconfig import tile_config
from layers.tileoverview import current_overview, reset_memo
from layers.tilerender import Tile
from tests.layers.tilehelpers import (EXTENT, NGO_MON, count_in_tile, decode, features, ids_in_tile, inside,
                                      point_layer, tile_of, url)
from twin.services import FeatureRow, write_features

pytestmark = pytest.mark.django_db

ORIGIN = (107.570, 16.460)
SIDE, STEP = 70, 0.0002  # 70 × 70 points, ~21 m apart: a ~1.5 km square
SMALL = {"feature_cap": 100, "live_cluster_limit": 1000}


@pytest.fixture(autouse=True)
def fresh_tile_cache():
    caches["tiles"].clear()
    reset_memo()
    yield
    caches["tiles"].clear()


@pytest.fixture
def small_caps(settings):
    settings.TILES = {**settings.TILES, **SMALL}
    return tile_config()


def grid_rows(prefix: str, side: int, origin: tuple[float, float], step: float) -> list[FeatureRow]:
    return [FeatureRow(f"{prefix}{i}-{j}", shapely.Point(origin[0] + i * step, origin[1] + j * step),
                       {"sensor_type": "traffic_counter", "unit": "xe/h"}, name=f"Đếm xe {i}-{j}")
            for i in range(side) for j in range(side)]


@pytest.fixture
def dense(small_caps):
    layer = point_layer()
    write_features(layer, grid_rows("g", SIDE, ORIGIN, STEP))
    return layer


def around(lon: float, lat: float, z: int) -> list[tuple[int, int, int]]:
    """The tile holding the point and its eight neighbours: full, partial and empty tiles."""
    _, x, y = tile_of(lon, lat, z)
    return [(z, x + dx, y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]


def clusters_and_points(found: list[dict]) -> tuple[list[dict], list[dict]]:
    own = [f for f in found if inside(f)]
    return [f for f in own if f["properties"].get("cluster")], [f for f in own if not f["properties"].get("cluster")]


CENTRE = (ORIGIN[0] + SIDE * STEP / 2, ORIGIN[1] + SIDE * STEP / 2)


@pytest.mark.parametrize("z", [8, 11, 13, 14, 15, 16, 17, 18, 19])
def test_cluster_counts_add_up_to_the_features_in_every_tile(client, dense, small_caps, z):
    for tile in around(*CENTRE, z):
        truth = count_in_tile(dense, tile)
        clusters, points = clusters_and_points(features(client.get(url(dense.slug, tile)), dense.slug))
        if truth > small_caps.feature_cap:
            assert clusters and not points, f"dense tile {tile} ({truth} points) is clustered"
            assert sum(c["properties"]["count"] for c in clusters) == truth
            assert all(c["geometry"]["type"] == "Point" for c in clusters)
        else:
            assert not clusters
            assert {p["properties"]["id"] for p in points} == ids_in_tile(dense, tile)


def test_each_path_is_taken_where_expected(client, dense, small_caps):
    with transaction.atomic(), connection.cursor() as cursor:
        overview = current_overview(cursor, layer_with_version(None, dense.slug), small_caps)
    assert overview.features == SIDE * SIDE
    assert overview.cluster_zoom == 15  # z15 tiles hold > 1,000 points, z16 tiles fewer
    # z15: precomputed; z16/z17: aggregated live; z19: raw points.
    for z, kind in ((15, "clusters"), (16, "clusters"), (17, "clusters"), (19, "points")):
        tile = tile_of(*CENTRE, z)
        clusters, points = clusters_and_points(features(client.get(url(dense.slug, tile)), dense.slug))
        assert (clusters if kind == "clusters" else points), (z, kind)


def test_clusters_sit_on_a_32_by_32_grid_one_per_cell(client, dense):
    tile = tile_of(*CENTRE, 16)
    clusters, _ = clusters_and_points(features(client.get(url(dense.slug, tile)), dense.slug))
    cells = [(c["geometry"]["coordinates"][0] // 128, c["geometry"]["coordinates"][1] // 128) for c in clusters]
    assert len(cells) == len(set(cells)) and len(cells) <= 32 * 32


def test_precomputed_and_live_clusters_agree(dense, small_caps):
    layer = layer_with_version(None, dense.slug)
    tile = Tile(*tile_of(*CENTRE, 14))
    with transaction.atomic(), connection.cursor() as cursor:
        overview = current_overview(cursor, layer, small_caps)
        own, stored = tilerender._overview_clusters(cursor, layer, tile, small_caps)
        live = tilerender._live_clusters(cursor, layer, overview, tile, small_caps)
    assert own

    def by_cell(body: bytes) -> dict:
        found = decode(body)[dense.slug]["features"]
        return {(f["geometry"]["coordinates"][0] // 128, f["geometry"]["coordinates"][1] // 128):
                (f["properties"]["count"], f["geometry"]["coordinates"]) for f in found}

    stored_cells, live_cells = by_cell(stored), by_cell(live)
    assert stored_cells.keys() == live_cells.keys()
    for cell, (count, (x, y)) in stored_cells.items():
        live_count, (lx, ly) = live_cells[cell]
        assert count == live_count and abs(x - lx) <= 2 and abs(y - ly) <= 2


@pytest.mark.parametrize("zoom", [15, 16])  # precomputed, live
@pytest.mark.parametrize("buffer", [64, 256])  # within one cell of the edge, two cells
def test_edge_clusters_are_repeated_in_the_neighbours_buffer(client, dense, settings, zoom, buffer):
    settings.TILES = {**settings.TILES, "buffer": buffer}
    z, x, y = tile_of(*CENTRE, zoom)
    left = features(client.get(url(dense.slug, (z, x, y))), dense.slug)
    right = features(client.get(url(dense.slug, (z, x + 1, y))), dense.slug)

    def shifted(found: list[dict], dx: int, keep) -> set:
        return {(f["geometry"]["coordinates"][0] + dx, f["geometry"]["coordinates"][1], f["properties"]["count"])
                for f in found
                if keep(f["geometry"]["coordinates"][0]) and 0 <= f["geometry"]["coordinates"][1] < EXTENT}

    # Right's own clusters near its left edge are in left's buffer, and the other way round.
    right_edge = shifted([f for f in right if inside(f)], EXTENT, lambda px: px <= buffer)
    left_edge = shifted([f for f in left if inside(f)], 0, lambda px: px >= EXTENT - buffer)
    in_left_buffer = shifted(left, 0, lambda px: px >= EXTENT)
    in_right_buffer = shifted(right, EXTENT, lambda px: px < 0)
    assert right_edge == in_left_buffer and left_edge == in_right_buffer
    if buffer > 128:  # the grid's edge columns are always within two cells of the edge
        assert right_edge and left_edge


def test_a_write_rebuilds_the_overview_and_the_counts(client, dense, small_caps):
    tile = tile_of(*CENTRE, 13)
    before = sum(c["properties"]["count"] for c in
                 clusters_and_points(features(client.get(url(dense.slug, tile)), dense.slug))[0])
    write_features(dense, grid_rows("extra", 30, (CENTRE[0] + 0.00005, CENTRE[1] + 0.00005), 0.0001))
    clusters, _ = clusters_and_points(features(client.get(url(dense.slug, tile)), dense.slug))
    after = count_in_tile(dense, tile)
    assert after > before and sum(c["properties"]["count"] for c in clusters) == after


def test_a_write_making_a_live_tile_too_dense_rebuilds_instead_of_aggregating_it(client, dense, small_caps):
    z, x, y = tile_of(*CENTRE, 17)
    client.get(url(dense.slug, (z, x, y)))  # overview built for the first version
    write_features(dense, grid_rows("pile", 40, (CENTRE[0] + 0.00001, CENTRE[1] + 0.00001), 0.00001))
    clusters, _ = clusters_and_points(features(client.get(url(dense.slug, (z, x, y))), dense.slug))
    assert sum(c["properties"]["count"] for c in clusters) == count_in_tile(dense, (z, x, y)) > 1000


def test_plan_choices_do_not_change_the_tile(dense, small_caps, monkeypatch):
    layer = layer_with_version(None, dense.slug)
    tile = Tile(*tile_of(*CENTRE, 18))

    def render() -> list:
        body = tilerender.render_tile(layer, tile, small_caps)
        return sorted((f["properties"].get("id"), f["properties"].get("count")) for f in decode(body)[dense.slug]
                      ["features"])

    default = render()
    for small, large in ((10**6, 10**7), (0, 10**7), (0, 1)):  # layer scan, planner's choice, GiST only
        monkeypatch.setattr(tilerender, "SMALL_LAYER", small)
        monkeypatch.setattr(tilerender, "MEDIUM_LAYER", small)
        monkeypatch.setattr(tilerender, "LARGE_LAYER", large)
        assert render() == default


# --- lines and polygons ---

def _building_sizes(tile: tuple[int, int, int]) -> dict[str, float]:
    """Every building's size in tile units, computed as the renderer does (independent SQL)."""
    z = tile[0]
    per_degree = EXTENT * (1 << z) / 360.0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT external_id, ST_XMax(geom) - ST_XMin(geom), ST_YMax(geom) - ST_YMin(geom), "
            "ST_Y(ST_Centroid(ST_Transform(ST_TileEnvelope(%s, %s, %s), 4326))) FROM twin_feature f "
            "JOIN twin_layer l ON l.id = f.layer_id WHERE l.slug = 'hue-buildings' AND "
            "f.geom && ST_Transform(ST_TileEnvelope(%s, %s, %s, margin => 64.0 / 4096), 4326)", [*tile, *tile])
        rows = cursor.fetchall()
    return {i: max(w * per_degree, h * per_degree / math.cos(math.radians(lat))) for i, w, h, lat in rows}


def test_building_tiles_keep_the_largest_up_to_the_cap(client, settings):
    settings.TILES = {**settings.TILES, "feature_cap": 100}
    tile = tile_of(*NGO_MON, 14)
    found = features(client.get(url("hue-buildings", tile)), "hue-buildings")
    sizes = _building_sizes(tile)
    assert len(sizes) > 500 and len(found) == 100
    kept = {f["properties"]["id"] for f in found}
    hundredth = sorted(sizes.values(), reverse=True)[99]
    assert min(sizes[i] for i in kept) >= hundredth * 0.999
    assert all("height_m" in f["properties"] for f in found)


def test_buildings_smaller_than_a_pixel_are_dropped_at_low_zoom(client):
    tile = tile_of(*NGO_MON, 12)
    found = features(client.get(url("hue-buildings", tile)), "hue-buildings")
    sizes = _building_sizes(tile)
    visible = {i for i, size in sizes.items() if size >= 8}
    assert 0 < len(found) < len(sizes)
    assert {f["properties"]["id"] for f in found} <= visible
