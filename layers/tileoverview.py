# SPDX-License-Identifier: AGPL-3.0-or-later
"""Per-layer overview: feature count, extent and, for dense point layers, a cluster pyramid.

Why it exists: a z10 tile over a city with a million sensors holds half of
them. Aggregating 500k points per request takes ~1 s (stack notes: 1.2 s),
so the zooms where a dense tile holds more points than can be aggregated
live (``TileConfig.live_cluster_limit``) are precomputed once per layer data
version, in one scan of the layer:

1. every point goes into a cell of a fine global grid (level ``k``: the
   tiles of zoom ``k``), keeping count and coordinate sums;
2. the cells are rolled up level by level (a level-``z`` cell is four
   level-``z+1`` cells), so each level holds the exact count of every tile
   of zoom ``z``;
3. tiles of zooms 0..16 holding more points than a tile draws
   (``feature_cap``) are recorded as *dense* (``twin_tile_dense``), so a
   tile request knows without counting whether to draw points or clusters;
4. ``cluster_zoom`` is the highest zoom where some tile holds more than the
   live limit; for each zoom up to it, the dense tiles keep their 32×32
   cells (a zoom-``z`` cell is a zoom-``z+5`` tile) as clusters: count and
   mean position (``twin_tile_cluster``).

A tile at zoom ≤ ``cluster_zoom`` is then one index lookup of at most
~9×1024 rows. The overview is rebuilt when the layer's data version moved
(under an advisory lock, so concurrent requests build it once). Mixed and
line/polygon layers only get count and extent (used to pick the scan).

An overview read back for a version never changes, so it is memoised in
process (:func:`known_overview`); only overviews read from the database are
memoised, never one just built in a transaction that could still roll back.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from layers.tileconfig import CELL_SHIFT, TileConfig
from twin.models import Layer

logger = logging.getLogger(__name__)

HALF_WORLD = 20037508.342789244  # EPSG:3857 half extent, metres (π·R)
EARTH_RADIUS = 6378137.0
MAX_LAT = 85.0511287798066
DENSE_MAX_ZOOM = 16  # counts are kept for zooms 0..16; deeper dense tiles are checked live
BASE_LEVEL = 19  # first scan's grid (zoom-14 cells): enough for cluster_zoom ≤ 14 in one pass
_LOCK_CLASS = 0x7469  # pg_advisory_xact_lock(class, layer id): "ti"(les)
POINT_TYPES = frozenset({"Point", "MultiPoint"})



def merc_x(lon: str) -> str:
    """SQL for the Web-Mercator x (metres) of longitude expression ``lon``: cheaper than PROJ."""
    return f"({HALF_WORLD} * {lon} / 180.0)"


def merc_y(lat: str) -> str:
    """SQL for the Web-Mercator y (metres) of latitude expression ``lat``, clamped to ±85.05°."""
    return f"({EARTH_RADIUS} * ln(tan(pi() / 4 + radians(least(greatest({lat}, -{MAX_LAT}), {MAX_LAT})) / 2)))"


# A representative point of feature ``f``: the point itself (cheap), else the centroid (MultiPoint).
POINT_OF = "CASE WHEN GeometryType(f.geom) = 'POINT' THEN f.geom ELSE ST_Centroid(f.geom) END"


@dataclass(frozen=True, slots=True)
class Overview:
    """What the tile renderer knows about a layer without scanning it."""

    version: int
    layer_created: datetime
    features: int
    bounds: tuple[float, float, float, float] | None  # lon/lat; None for an empty layer
    cluster_zoom: int  # -1: no precomputed clusters
    config: str  # TileConfig.content_token it was built with

    def is_current(self, layer: Layer, cfg: TileConfig) -> bool:
        return (self.version == layer.data_version and self.layer_created == layer.created_at
                and self.config == cfg.content_token)


def is_point_layer(layer: Layer) -> bool:
    return layer.geometry_type in POINT_TYPES


def read_overview(cursor, layer_id: int) -> Overview | None:
    cursor.execute("SELECT version, layer_created, features, west, south, east, north, cluster_zoom, config "
                   "FROM twin_tile_overview WHERE layer_id = %s", [layer_id])
    row = cursor.fetchone()
    if row is None:
        return None
    bounds = None if row[3] is None else (row[3], row[4], row[5], row[6])
    return Overview(version=row[0], layer_created=row[1], features=row[2], bounds=bounds, cluster_zoom=row[7],
                    config=row[8])


_MEMO: OrderedDict[tuple, Overview] = OrderedDict()
_MEMO_SIZE = 512
_MEMO_LOCK = threading.Lock()  # runserver and WSGI servers answer tiles from several threads


def known_overview(cursor, layer: Layer, cfg: TileConfig) -> Overview | None:
    """The layer's overview as stored (possibly stale, or ``None``), memoised once current."""
    key = (layer.pk, layer.created_at, layer.data_version, cfg.content_token)
    with _MEMO_LOCK:
        overview = _MEMO.get(key)
        if overview is not None:
            _MEMO.move_to_end(key)
            return overview
    overview = read_overview(cursor, layer.pk)
    if overview is not None and overview.is_current(layer, cfg):
        with _MEMO_LOCK:
            _MEMO[key] = overview
            while len(_MEMO) > _MEMO_SIZE:
                _MEMO.popitem(last=False)
    return overview


def reset_memo() -> None:
    """Forget memoised overviews (tests; after restoring a database)."""
    with _MEMO_LOCK:
        _MEMO.clear()


def current_overview(cursor, layer: Layer, cfg: TileConfig) -> Overview:
    """The overview for the layer's current data version, built now if missing or stale.

    Must run inside a transaction: the advisory lock is transaction-scoped.
    """
    overview = read_overview(cursor, layer.pk)
    if overview is not None and overview.is_current(layer, cfg):
        return overview
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, layer.pk])
    overview = read_overview(cursor, layer.pk)  # another request may have built it meanwhile
    if overview is not None and overview.is_current(layer, cfg):
        return overview
    started = time.perf_counter()
    overview = _build(cursor, layer, cfg)
    logger.info("tile overview of %s (version %s): %s features, clusters up to z%s, %.0f ms", layer.slug,
                layer.data_version, overview.features, overview.cluster_zoom, (time.perf_counter() - started) * 1e3)
    return overview


_REBUILDING: dict[int, threading.Thread] = {}  # layer id -> the thread rebuilding its overview
_REBUILDING_LOCK = threading.Lock()


def rebuild_in_background(layer: Layer, cfg: TileConfig) -> bool:
    """Start rebuilding the layer's overview in a thread, unless one is already at it in this process.

    Why: at a million points a rebuild takes seconds (docs/benchmarks.md),
    and the request that finds the overview stale should not wait for it.
    The thread commits on its own connection; other processes asking at the
    same time wait on the advisory lock in :func:`current_overview` (inside
    their own thread) and then find it built. Returns whether a thread started.
    """
    from django.db import connection, transaction  # noqa: PLC0415 - keeps this module importable without a DB

    def run() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                current_overview(cursor, layer, cfg)
        except Exception:  # the next stale request tries again
            logger.exception("background rebuild of the tile overview of %s failed", layer.slug)
        finally:
            connection.close()
            with _REBUILDING_LOCK:
                _REBUILDING.pop(layer.pk, None)

    with _REBUILDING_LOCK:
        if layer.pk in _REBUILDING:
            return False
        thread = threading.Thread(target=run, name=f"tile-overview-{layer.pk}", daemon=True)
        _REBUILDING[layer.pk] = thread
    thread.start()
    return True


def wait_for_rebuilds(timeout: float = 120.0) -> None:
    """Join the background rebuilds running now (tests, benchmarks, shutdown)."""
    with _REBUILDING_LOCK:
        threads = list(_REBUILDING.values())
    for thread in threads:
        thread.join(timeout)


def _build(cursor, layer: Layer, cfg: TileConfig) -> Overview:
    cursor.execute("DELETE FROM twin_tile_cluster WHERE layer_id = %s", [layer.pk])
    cursor.execute("DELETE FROM twin_tile_dense WHERE layer_id = %s", [layer.pk])
    if is_point_layer(layer):
        # Without statistics the planner expects ~150 rows and sorts a million on
        # disk (2.4 s); hashing the groups in memory is what this query needs.
        # These last until the end of the build's transaction.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        features, bounds, cluster_zoom = _build_point_pyramid(cursor, layer, cfg)
    else:
        (features, bounds), cluster_zoom = _count_and_extent(cursor, layer.pk), -1
    overview = Overview(version=layer.data_version, layer_created=layer.created_at, features=features,
                        bounds=bounds, cluster_zoom=cluster_zoom, config=cfg.content_token)
    cursor.execute(
        "INSERT INTO twin_tile_overview (layer_id, layer_created, version, features, west, south, east, north, "
        "cluster_zoom, config, built_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now()) "
        "ON CONFLICT (layer_id) DO UPDATE SET layer_created = EXCLUDED.layer_created, version = EXCLUDED.version, "
        "features = EXCLUDED.features, west = EXCLUDED.west, south = EXCLUDED.south, east = EXCLUDED.east, "
        "north = EXCLUDED.north, cluster_zoom = EXCLUDED.cluster_zoom, config = EXCLUDED.config, built_at = now()",
        [layer.pk, layer.created_at, layer.data_version, features, *(bounds or (None,) * 4), cluster_zoom,
         cfg.content_token])
    return overview


def _count_and_extent(cursor, layer_id: int) -> tuple[int, tuple[float, float, float, float] | None]:
    cursor.execute("SELECT n, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                   "(SELECT count(*) AS n, ST_Extent(geom) AS e FROM twin_feature WHERE layer_id = %s) s", [layer_id])
    features, *bounds = cursor.fetchone()
    return (int(features), tuple(bounds)) if features else (0, None)


def _build_point_pyramid(cursor, layer: Layer, cfg: TileConfig):
    """Scan, roll up, record dense tiles, store clusters; return (count, bounds, cluster_zoom)."""
    _prepare_cells(cursor)
    features, bounds = _scan_cells(cursor, layer.pk, BASE_LEVEL)
    if not features:
        return 0, None, -1
    _roll_up(cursor, BASE_LEVEL)
    cursor.execute(
        "INSERT INTO twin_tile_dense (layer_id, version, z, x, y, n) SELECT %s, %s, z, x, y, n FROM _tile_cells "
        "WHERE z <= %s AND n > %s", [layer.pk, layer.data_version, DENSE_MAX_ZOOM, cfg.feature_cap])
    cursor.execute("SELECT max(z) FROM _tile_cells WHERE z <= %s AND n > %s",
                   [DENSE_MAX_ZOOM, cfg.live_cluster_limit])
    cluster_zoom = cursor.fetchone()[0]
    if cluster_zoom is None:
        return features, bounds, -1
    if cluster_zoom + CELL_SHIFT > BASE_LEVEL:  # extremely dense: cells finer than the first scan
        level = cluster_zoom + CELL_SHIFT
        cursor.execute("TRUNCATE _tile_cells")
        _scan_cells(cursor, layer.pk, level)
        _roll_up(cursor, level)
    _store_clusters(cursor, layer, cluster_zoom, cfg.feature_cap)
    return features, bounds, cluster_zoom


def _prepare_cells(cursor) -> None:
    # A session temp table (not ON COMMIT DROP): a request may build inside an
    # outer transaction (tests), and the table is reused by the next build.
    cursor.execute("CREATE TEMP TABLE IF NOT EXISTS _tile_cells (z smallint, x integer, y integer, n bigint, "
                   "sx float8, sy float8) ON COMMIT DELETE ROWS")  # sx, sy: sums of lon, lat
    cursor.execute("CREATE INDEX IF NOT EXISTS _tile_cells_z ON _tile_cells (z)")
    cursor.execute("TRUNCATE _tile_cells")


def _scan_cells(cursor, layer_id: int, level: int) -> tuple[int, tuple[float, float, float, float] | None]:
    """One pass over the layer: points into level-``level`` cells; return count and lon/lat bounds.

    Per row only what the cell needs: ``lon``/``lat`` are read once (the
    ``OFFSET 0`` keeps the planner from inlining ``ST_X`` into every use),
    columns are linear in longitude and only the row needs the Mercator
    formula. Cells keep sums of lon/lat (``sx``/``sy``): half the cost of
    the Mercator sums, and a cell's mean latitude is its mean Mercator y
    to well under a tile unit.
    """
    cursor.execute(
        f"""
        WITH cells AS MATERIALIZED (
            SELECT least(floor((lon + 180.0) * %(lon_scale)s), %(top)s)::int AS x,
                   least(floor(({HALF_WORLD} - {merc_y('lat')}) * %(scale)s), %(top)s)::int AS y,
                   count(*) AS n, sum(lon) AS sx, sum(lat) AS sy,
                   min(lon) AS lon0, min(lat) AS lat0, max(lon) AS lon1, max(lat) AS lat1
            FROM (SELECT ST_X(p) AS lon, ST_Y(p) AS lat
                  FROM (SELECT {POINT_OF} AS p FROM twin_feature f WHERE f.layer_id = %(layer)s) q
                  OFFSET 0) ll
            GROUP BY 1, 2),
        stored AS (INSERT INTO _tile_cells (z, x, y, n, sx, sy) SELECT %(level)s, x, y, n, sx, sy FROM cells)
        SELECT coalesce(sum(n), 0), min(lon0), min(lat0), max(lon1), max(lat1) FROM cells
        """,
        {"level": level, "scale": (1 << level) / (2 * HALF_WORLD), "lon_scale": (1 << level) / 360.0,
         "top": (1 << level) - 1, "layer": layer_id},
    )
    features, *bounds = cursor.fetchone()
    return (int(features), tuple(bounds)) if features else (0, None)


def _roll_up(cursor, level: int) -> None:
    """Levels ``level-1 .. 0``: each cell sums its four children, so counts stay exact."""
    for z in range(level - 1, -1, -1):
        cursor.execute("INSERT INTO _tile_cells (z, x, y, n, sx, sy) SELECT %s, x >> 1, y >> 1, sum(n), sum(sx), "
                       "sum(sy) FROM _tile_cells WHERE z = %s GROUP BY 2, 3", [z, z + 1])
    # Statistics for the self-join in _store_clusters: without them the planner
    # nests loops over ~10^5 cells (4 s instead of a hash join's 0.1 s).
    cursor.execute("ANALYZE _tile_cells")


def _store_clusters(cursor, layer: Layer, cluster_zoom: int, feature_cap: int) -> None:
    """Keep the cells of dense tiles at zooms ``0..cluster_zoom`` as clusters.

    The mean position (from the cell's lon/lat sums) is clamped one tile unit
    inside its cell so the rounded MVT coordinate never lands in a
    neighbouring tile (counts stay per tile).
    """
    cursor.execute(
        f"""
        INSERT INTO twin_tile_cluster (layer_id, version, z, gx, gy, n, mx, my)
        SELECT %(layer)s, %(version)s, c.z - {CELL_SHIFT}, c.x, c.y, c.n,
               least(greatest({merc_x('c.sx / c.n')}, -{HALF_WORLD} + c.x * s.size + s.unit),
                     -{HALF_WORLD} + (c.x + 1) * s.size - s.unit),
               least(greatest({merc_y('c.sy / c.n')}, {HALF_WORLD} - (c.y + 1) * s.size + s.unit),
                     {HALF_WORLD} - c.y * s.size - s.unit)
        FROM _tile_cells c
        JOIN _tile_cells t ON t.z = c.z - {CELL_SHIFT} AND t.x = c.x >> {CELL_SHIFT} AND t.y = c.y >> {CELL_SHIFT}
        CROSS JOIN LATERAL (SELECT 2 * {HALF_WORLD} / power(2, c.z) AS size,
                                   2 * {HALF_WORLD} / power(2, c.z) / 128 AS unit) s
        WHERE c.z BETWEEN {CELL_SHIFT} AND %(top)s AND t.n > %(cap)s
        """,
        {"layer": layer.pk, "version": layer.data_version, "top": cluster_zoom + CELL_SHIFT, "cap": feature_cap},
    )
