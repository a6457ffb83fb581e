# SPDX-License-Identifier: AGPL-3.0-or-later
"""Render one Mapbox Vector Tile of one layer, in PostgreSQL (``ST_AsMVT``).

How density is kept in check, so that no tile is slow however dense the layer:

* **points**: at most ``feature_cap`` points are drawn one by one. A denser
  tile is drawn as clusters (``cluster=true``, ``count``) on a 32×32 grid
  aligned with the tile, never cut: cluster counts of a tile add up to the
  features in it. Zooms where a dense tile holds more than
  ``live_cluster_limit`` points read precomputed clusters
  (:mod:`layers.tileoverview`); the others aggregate live.
* **lines and polygons**: features smaller than ``min_feature_px`` at the
  tile's zoom are dropped (they would vanish anyway), geometries are clipped
  and simplified in EPSG:4326 before the transform, and a tile keeps at
  most the ``feature_cap`` largest features.

Filters use the tile envelope in EPSG:4326 against the GiST index on
``geom`` (the column is never transformed to filter). ``jit`` is off for
these statements: the stack notes measured JIT doubling aggregation time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from django.db import connection, transaction

from layers.tileconfig import CLUSTER_CELLS, EXTENT, TileConfig
from layers.tileoverview import (DENSE_MAX_ZOOM, HALF_WORLD, MAX_LAT, POINT_OF, Overview, current_overview,
                                 is_point_layer, known_overview, merc_x, merc_y, rebuild_in_background)
from layers.tilefields import properties_sql
from twin.models import Layer

# Plan steering. The planner needs statistics to choose between the layer_id
# btree and the geom GiST index; without them (autovacuum off, fresh load) it
# ANDs both bitmaps and reads a 1M-entry btree for a 700-point tile (22 ms
# instead of 1 ms). The overview knows the layer's size, so we choose:
SMALL_LAYER = 2_000  # read the whole layer through the btree, filter by bbox
MEDIUM_LAYER = 50_000  # ... also when the tile covers a quarter of the layer's extent
LARGE_LAYER = 100_000  # GiST only: the layer is most of what the bbox holds


@dataclass(frozen=True, slots=True)
class Tile:
    """A z/x/y tile (XYZ scheme, y down) and its envelope arithmetic."""

    z: int
    x: int
    y: int

    @property
    def size(self) -> float:
        """Tile width in EPSG:3857 metres."""
        return 2 * HALF_WORLD / (1 << self.z)

    @property
    def left(self) -> float:
        return -HALF_WORLD + self.x * self.size

    @property
    def top(self) -> float:
        return HALF_WORLD - self.y * self.size

    def lonlat_bbox(self, margin_units: float) -> tuple[float, float, float, float]:
        """The envelope plus a margin, in EPSG:4326, clamped to the world.

        Computed here rather than with ``ST_Transform(ST_TileEnvelope(..., margin))``:
        a margin past ±180° wraps to the other side of the world in PROJ.
        """
        pad = self.size * margin_units / EXTENT
        x0, x1 = self.left - pad, self.left + self.size + pad
        y0, y1 = self.top - self.size - pad, self.top + pad

        def lon(v: float) -> float:
            return max(-180.0, min(180.0, v / HALF_WORLD * 180.0))

        def lat(v: float) -> float:
            return _lat_of(max(-HALF_WORLD, min(HALF_WORLD, v)))

        return lon(x0), max(-MAX_LAT, lat(y0)), lon(x1), min(MAX_LAT, lat(y1))

    def parent(self, zoom: int) -> Tile:
        shift = self.z - zoom
        return Tile(zoom, self.x >> shift, self.y >> shift)


@dataclass(frozen=True, slots=True)
class RenderedTile:
    """A tile's MVT bytes; ``provisional`` when drawn from the previous overview during a background rebuild.

    A provisional tile is correct but for counts one write behind: it must
    not be cached under the new data version (layers/tiles.py).
    """

    body: bytes
    provisional: bool = False


def render_tile(layer: Layer, tile: Tile, cfg: TileConfig) -> bytes:
    """The MVT bytes of ``tile`` for ``layer`` (``b""`` when the tile is empty)."""
    return render(layer, tile, cfg).body


def render(layer: Layer, tile: Tile, cfg: TileConfig) -> RenderedTile:
    """Render ``tile`` of ``layer``.

    The common case (a point layer whose overview is current) is one
    statement. Only building the overview needs a transaction (its lock).
    """
    with connection.cursor() as cursor:
        overview = known_overview(cursor, layer, cfg)
        if overview is None:  # the first tile of this layer
            with transaction.atomic():
                overview = current_overview(cursor, layer, cfg)
        if not is_point_layer(layer):
            return RenderedTile(_shape_tile(cursor, layer, overview, tile, cfg))
        if overview.is_current(layer, cfg):
            body, dense = _known_point_tile(cursor, layer, overview, tile, cfg)
            if body is not None:
                return RenderedTile(body)
            if dense:
                return RenderedTile(_live_clusters(cursor, layer, overview, tile, cfg))
        return _point_tile(cursor, layer, overview, tile, cfg)


# Prepended to every tile statement: one round trip, and SET LOCAL lasts for
# the statement's implicit transaction only. JIT: the planner's estimate for
# a branch that CASE never runs can pass jit_above_cost and compile for 20 ms.
# Sorting: without statistics the planner sorts to group; hashing is faster.
_PRELUDE = "SET LOCAL jit = off; SET LOCAL enable_sort = off; "


def _fetch(cursor, sql: str, params: dict) -> tuple:
    """Run one tile statement with :data:`_PRELUDE`; its single row."""
    cursor.execute(_PRELUDE + sql, params)
    while cursor.nextset():
        pass
    return cursor.fetchone()


def _known_point_tile(cursor, layer: Layer, overview: Overview, tile: Tile,
                      cfg: TileConfig) -> tuple[bytes | None, bool]:
    """Answer from the overview in one statement: raw points if the tile is sparse, else clusters.

    Returns ``(body, dense)``; ``body`` is ``None`` when the tile must be
    aggregated live (dense above ``cluster_zoom``) or its density is unknown
    (deeper than z16 under a dense z16 tile).
    """
    probe = tile if tile.z <= DENSE_MAX_ZOOM else tile.parent(DENSE_MAX_ZOOM)
    source, params = _source(layer, overview, tile, cfg.buffer)
    precomputed = tile.z <= overview.cluster_zoom
    dense, raw, clusters = _fetch(
        cursor,
        f"""
        WITH d AS (SELECT 1 FROM twin_tile_dense
                   WHERE layer_id = %(layer)s AND z = %(pz)s AND x = %(px)s AND y = %(py)s)
        SELECT EXISTS (SELECT 1 FROM d),
               CASE WHEN NOT EXISTS (SELECT 1 FROM d) THEN ({_raw_points_sql(layer, source)}) END,
               CASE WHEN %(precomputed)s AND EXISTS (SELECT 1 FROM d) THEN ({_CLUSTERS_SQL}) END
        """,
        {**params, **_tile_params(layer, tile, cfg), **_raw_params(tile), "pz": probe.z, "px": probe.x,
         "py": probe.y, "precomputed": precomputed, "cap": cfg.feature_cap},
    )
    if not dense:
        return bytes(raw or b""), False
    if clusters:
        return bytes(clusters), True
    return None, tile.z <= DENSE_MAX_ZOOM


def _point_tile(cursor, layer: Layer, overview: Overview, tile: Tile, cfg: TileConfig) -> RenderedTile:
    """Without a current overview: try raw points (bounded scan), else clusters."""
    body = _guarded_raw_points(cursor, layer, overview, tile, cfg)
    if body is not None:
        return RenderedTile(body)
    if not overview.is_current(layer, cfg) and _count(cursor, layer, overview, tile, cfg.live_cluster_limit + 1) > \
            cfg.live_cluster_limit:
        # The data changed since the overview was built and this tile is too
        # dense to aggregate live. A big layer is rebuilt in the background
        # while the previous clusters answer; a small one here, under a lock.
        if _rebuilds_in_background(overview, tile, cfg):
            own, body = _overview_clusters(cursor, layer, tile, cfg)
            if own:  # else the tile was sparse before the write: the old clusters do not cover it
                rebuild_in_background(layer, cfg)
                return RenderedTile(body, provisional=True)
        with transaction.atomic():
            overview = current_overview(cursor, layer, cfg)
        if tile.z <= overview.cluster_zoom:
            own, body = _overview_clusters(cursor, layer, tile, cfg)
            if own:
                return RenderedTile(body)
    return RenderedTile(_live_clusters(cursor, layer, overview, tile, cfg))


def _rebuilds_in_background(stale: Overview, tile: Tile, cfg: TileConfig) -> bool:
    # Inside a transaction (tests, a caller's atomic block) a thread could not
    # see this connection's rows: rebuild in the request then.
    return (cfg.background_rebuild_min > 0 and stale.features >= cfg.background_rebuild_min
            and tile.z <= stale.cluster_zoom and not connection.in_atomic_block)


def _source(layer: Layer, overview: Overview | None, tile: Tile, margin_units: float) -> tuple[str, dict]:
    """``FROM ... WHERE`` over the layer's features whose box meets the tile (+ margin).

    The SQL text holds no values; they come back as named parameters.
    """
    x0, y0, x1, y1 = tile.lonlat_bbox(margin_units)
    params = {"layer": layer.pk, "bx0": x0, "by0": y0, "bx1": x1, "by1": y1}
    box = "f.geom && ST_MakeEnvelope(%(bx0)s, %(by0)s, %(bx1)s, %(by1)s, 4326)"
    n = overview.features if overview is not None else None
    if n is not None and (n <= SMALL_LAYER or (n <= MEDIUM_LAYER and _coverage(tile, overview) >= 0.25)):
        # Few rows: the btree reads them all; the subquery keeps the bbox off the GiST.
        return f"(SELECT * FROM twin_feature WHERE layer_id = %(layer)s OFFSET 0) f WHERE {box}", params
    if n is not None and n >= LARGE_LAYER:
        # "+ 0" hides layer_id from the btree: GiST alone, no 1M-entry bitmap to AND.
        return f"twin_feature f WHERE f.layer_id + 0 = %(layer)s AND {box}", params
    return f"twin_feature f WHERE f.layer_id = %(layer)s AND {box}", params


def _coverage(tile: Tile, overview: Overview) -> float:
    """Share of the layer's extent (lon/lat box) that the tile covers."""
    if overview.bounds is None:
        return 1.0
    x0, y0, x1, y1 = overview.bounds
    t0, s0, t1, s1 = tile.lonlat_bbox(0)
    width, height = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    overlap = max(0.0, min(x1, t1) - max(x0, t0)) * max(0.0, min(y1, s1) - max(y0, s0))
    return overlap / (width * height)


def _count(cursor, layer: Layer, overview: Overview, tile: Tile, limit: int) -> int:
    source, params = _source(layer, overview, tile, 0)
    return int(_fetch(cursor, f"SELECT count(*) FROM (SELECT 1 FROM {source} LIMIT %(limit)s) s",
                      {**params, "limit": limit})[0])


def _rim(cfg: TileConfig) -> int:
    """Cells of the neighbouring tiles that can reach into the buffer."""
    return max(1, math.ceil(cfg.buffer / (EXTENT // CLUSTER_CELLS)))


def _tile_params(layer: Layer, tile: Tile, cfg: TileConfig) -> dict:
    return {"name": layer.slug, "z": tile.z, "x": tile.x, "y": tile.y, "buffer": cfg.buffer, "rim": _rim(cfg)}


ENVELOPE = "ST_TileEnvelope(%(z)s, %(x)s, %(y)s)"


def _raw_params(tile: Tile) -> dict:
    return {"left": tile.left, "top": tile.top, "unit": tile.size / EXTENT}


def _raw_points_sql(layer: Layer, source: str, *, limit: str = "%(cap)s") -> str:
    """``SELECT ST_AsMVT(...)`` of the tile's points, at most ``limit`` of them.

    A Point goes to tile units by plain arithmetic (the same Web-Mercator
    formulas as PROJ, without PROJ's per-call cost; the bbox filter already
    keeps it inside the buffer). MultiPoints take ``ST_AsMVTGeom``.
    """
    props = properties_sql(layer.kind, "f.properties")
    tile_xy = (f"ST_MakePoint(round(({merc_x('ST_X(f.geom)')} - %(left)s) / %(unit)s), "
               f"round((%(top)s - {merc_y('ST_Y(f.geom)')}) / %(unit)s))")
    return f"""
        SELECT ST_AsMVT(t, %(name)s, {EXTENT}, 'geom', 'fid') FROM (
            SELECT f.id AS fid,
                   CASE WHEN GeometryType(f.geom) = 'POINT' THEN {tile_xy}
                        ELSE ST_AsMVTGeom(ST_Transform(f.geom, 3857), {ENVELOPE}, {EXTENT}, %(buffer)s, true)
                   END AS geom,
                   f.external_id AS id, NULLIF(f.name, '') AS name, f.status, f.height_m{props}
            FROM {source}
            LIMIT {limit}) t
        WHERE t.geom IS NOT NULL"""


def _guarded_raw_points(cursor, layer: Layer, overview: Overview, tile: Tile, cfg: TileConfig) -> bytes | None:
    """Every point of the tile, or ``None`` if there are more than the cap.

    Candidates are counted with ``LIMIT cap + 1`` first, so a dense tile
    costs a bounded index scan and ``ST_AsMVT`` runs only when it is sparse.
    """
    source, params = _source(layer, overview, tile, cfg.buffer)
    (body,) = _fetch(
        cursor,
        f"""
        SELECT CASE WHEN (SELECT count(*) FROM (SELECT 1 FROM {source} LIMIT %(cap)s + 1) n) <= %(cap)s
                    THEN ({_raw_points_sql(layer, source)}) END
        """,
        {**params, **_tile_params(layer, tile, cfg), **_raw_params(tile), "cap": cfg.feature_cap},
    )
    return None if body is None else bytes(body)


# Precomputed clusters of a tile plus the neighbours' cells its buffer reaches,
# projected to tile units by arithmetic (a plain ST_MakePoint per row is what
# keeps a 1,000-cluster tile at a few milliseconds).
_CLUSTERS_SQL = f"""
    SELECT ST_AsMVT(t, %(name)s, {EXTENT}, 'geom') FROM (
        SELECT ST_MakePoint(p.px, p.py) AS geom, p.n AS count, true AS cluster
        FROM (SELECT round((c.mx - %(left)s) / %(unit)s) AS px, round((%(top)s - c.my) / %(unit)s) AS py, c.n
              FROM twin_tile_cluster c
              WHERE c.layer_id = %(layer)s AND c.z = %(z)s
                AND c.gx BETWEEN %(x)s * {CLUSTER_CELLS} - %(rim)s
                             AND %(x)s * {CLUSTER_CELLS} + {CLUSTER_CELLS - 1} + %(rim)s
                AND c.gy BETWEEN %(y)s * {CLUSTER_CELLS} - %(rim)s
                             AND %(y)s * {CLUSTER_CELLS} + {CLUSTER_CELLS - 1} + %(rim)s) p
        WHERE p.px BETWEEN -%(buffer)s AND {EXTENT} + %(buffer)s
          AND p.py BETWEEN -%(buffer)s AND {EXTENT} + %(buffer)s) t"""


def _overview_clusters(cursor, layer: Layer, tile: Tile, cfg: TileConfig) -> tuple[bool, bytes]:
    """Precomputed clusters of the tile (and the neighbours' cells within the buffer).

    Returns whether the tile itself has clusters (it is dense) and the MVT.
    No version filter: a concurrent rebuild can only make the rows newer.
    """
    own, body = _fetch(
        cursor,
        f"""
        SELECT EXISTS (SELECT 1 FROM twin_tile_cluster WHERE layer_id = %(layer)s AND z = %(z)s
                       AND gx BETWEEN %(x)s * {CLUSTER_CELLS} AND %(x)s * {CLUSTER_CELLS} + {CLUSTER_CELLS - 1}
                       AND gy BETWEEN %(y)s * {CLUSTER_CELLS} AND %(y)s * {CLUSTER_CELLS} + {CLUSTER_CELLS - 1}),
               ({_CLUSTERS_SQL})
        """,
        {**_tile_params(layer, tile, cfg), **_raw_params(tile), "layer": layer.pk},
    )
    return bool(own), bytes(body or b"")


def _live_clusters(cursor, layer: Layer, overview: Overview, tile: Tile, cfg: TileConfig) -> bytes:
    """Aggregate the tile's points on its 32×32 grid, in one statement.

    Points are read whole cells beyond the tile (as many as the buffer can
    reach), so the clusters drawn in the buffer are the neighbours' edge
    clusters, identical to theirs. Cells
    are found from lon/lat directly: columns are linear in longitude, rows
    come from ``width_bucket`` over the row edges converted to latitude
    here, so no point goes through a Mercator formula (per-row function
    calls are what grouping 10k points costs). Each cluster's mean position
    is clamped a unit inside its cell so rounding never moves it into the
    next tile.
    """
    rim = _rim(cfg)
    source, params = _source(layer, overview, tile, rim * (EXTENT // CLUSTER_CELLS))
    cell, unit = tile.size / CLUSTER_CELLS, tile.size / EXTENT
    # Row j (from the top, -rim..31+rim) spans Mercator y (top-(j+1)·cell, top-j·cell];
    # ascending latitude edges: bucket i of width_bucket is row 31 + rim - (i - 1).
    rows = CLUSTER_CELLS + 2 * rim
    edges = [_lat_of(tile.top - (CLUSTER_CELLS + rim - i) * cell) for i in range(rows + 1)]
    (body,) = _fetch(
        cursor,
        f"""
        SELECT ST_AsMVT(t, %(name)s, {EXTENT}, 'geom') FROM (
            SELECT ST_MakePoint(px, py) AS geom, n AS count, true AS cluster
            FROM (SELECT g.n,
                         round((least(greatest({merc_x('g.lon')}, %(left)s + g.ix * %(cell)s + %(unit)s),
                                      %(left)s + (g.ix + 1) * %(cell)s - %(unit)s) - %(left)s) / %(unit)s) AS px,
                         round((%(top)s - least(greatest({merc_y('g.lat')}, %(top)s - (g.iy + 1) * %(cell)s + %(unit)s),
                                                %(top)s - g.iy * %(cell)s - %(unit)s)) / %(unit)s) AS py
                  FROM (SELECT k.ix, k.iy, count(*) AS n, avg(k.lon) AS lon, avg(k.lat) AS lat
                        FROM (SELECT floor((ll.lon - %(lon_left)s) / %(cell_deg)s) AS ix,
                                     %(last_row)s + 1 - width_bucket(ll.lat, %(edges)s::float8[]) AS iy,
                                     ll.lon, ll.lat
                              FROM (SELECT ST_X(p) AS lon, ST_Y(p) AS lat
                                    FROM (SELECT {POINT_OF} AS p FROM {source}) q OFFSET 0) ll) k
                        WHERE k.ix BETWEEN -%(rim)s AND %(last_row)s AND k.iy BETWEEN -%(rim)s AND %(last_row)s
                        GROUP BY k.ix, k.iy) g) c
            WHERE c.px BETWEEN -%(buffer)s AND {EXTENT} + %(buffer)s
              AND c.py BETWEEN -%(buffer)s AND {EXTENT} + %(buffer)s) t
        """,
        {**params, **_tile_params(layer, tile, cfg), "left": tile.left, "top": tile.top, "cell": cell, "unit": unit,
         "lon_left": tile.left / HALF_WORLD * 180.0, "cell_deg": cell / HALF_WORLD * 180.0, "edges": edges,
         "last_row": CLUSTER_CELLS - 1 + rim},
    )
    return bytes(body or b"")


def _lat_of(mercator_y: float) -> float:
    """Latitude (degrees) of a Web-Mercator y in metres."""
    return math.degrees(2 * math.atan(math.exp(mercator_y / 6378137.0)) - math.pi / 2)


def _shape_tile(cursor, layer: Layer, overview: Overview, tile: Tile, cfg: TileConfig) -> bytes:
    """Lines and polygons: drop sub-pixel features, keep the largest ``feature_cap``.

    Clipping (to the buffered tile) and simplifying (to half a tile unit) in
    EPSG:4326 first means ``ST_Transform`` sees a few vertices, not a whole
    province outline: 61 → 26 ms for the provinces at z5, 6 → 2 ms for wards at z14.
    """
    source, params = _source(layer, overview, tile, cfg.buffer)
    per_degree = EXTENT * (1 << tile.z) / 360.0  # tile units per degree of longitude
    lat_mid = math.radians((params["by0"] + params["by1"]) / 2)
    keep_points = " OR GeometryType(c.geom) IN ('POINT', 'MULTIPOINT')" if layer.geometry_type == "Geometry" else ""
    props = properties_sql(layer.kind, "c.properties")
    (body,) = _fetch(
        cursor,
        f"""
        SELECT ST_AsMVT(t, %(name)s, {EXTENT}, 'geom', 'fid') FROM (
            SELECT c.id AS fid,
                   ST_AsMVTGeom(ST_Transform(ST_Simplify(ST_ClipByBox2D(c.geom, ST_MakeEnvelope(
                                    %(bx0)s, %(by0)s, %(bx1)s, %(by1)s, 4326)), %(tolerance)s, true), 3857),
                                {ENVELOPE}, {EXTENT}, %(buffer)s, true) AS geom,
                   c.external_id AS id, NULLIF(c.name, '') AS name, c.status, c.height_m{props}
            FROM (SELECT f.*, greatest((ST_XMax(f.geom) - ST_XMin(f.geom)) * %(kx)s,
                                       (ST_YMax(f.geom) - ST_YMin(f.geom)) * %(ky)s) AS size
                  FROM {source}) c
            WHERE c.size >= %(min_size)s{keep_points}
            ORDER BY c.size DESC
            LIMIT %(cap)s) t
        WHERE t.geom IS NOT NULL
        """,
        {**params, **_tile_params(layer, tile, cfg), "tolerance": 0.5 / per_degree, "kx": per_degree,
         "ky": per_degree / max(math.cos(lat_mid), 1e-6), "min_size": cfg.min_feature_units,
         "cap": cfg.feature_cap},
    )
    return bytes(body or b"")
