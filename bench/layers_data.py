# SPDX-License-Identifier: AGPL-3.0-or-later
"""The scratch database of ``bench/layers.py``: 1M sensor points over Huế, the peers' view, the
bbox and tiles to ask for, and the SQL floor (one statement building our exact FeatureCollection).
"""
from __future__ import annotations

import importlib
import math
import os
import time

BOX = (107.49, 16.39, 107.70, 16.59)  # the Huế box
# (lon, lat, share of the points, sigma in degrees): Imperial City, east bank, An Cựu, Kim Long, Hương Trà
CLUSTERS = ((107.5775, 16.4695, 0.20, 0.012), (107.5950, 16.4630, 0.15, 0.010), (107.6050, 16.4480, 0.10, 0.015),
            (107.5550, 16.4650, 0.05, 0.008), (107.6300, 16.5300, 0.05, 0.020))
SLUG, VIEW = "bench-points", "bench_points"
HALF_WORLD = 20037508.342789244


# -- database -------------------------------------------------------------------------------------

def admin_connect(cfg: dict, dbname: str):
    import psycopg

    return psycopg.connect(host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"],
                           password=cfg["PASSWORD"] or None, dbname=dbname, autocommit=True)


def setup_database() -> tuple[str, str, dict]:
    """Create and migrate the scratch database; return (its name, its URL, parsed config)."""
    import dj_database_url

    from twin import settings as project_settings

    url = project_settings.DATABASE_URL
    cfg = dj_database_url.parse(url)
    bench_db = f"{cfg['NAME']}_bench_layers"
    with admin_connect(cfg, "postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}"')
        admin.execute(f'CREATE DATABASE "{bench_db}" TEMPLATE template1')
    bench_url = f"{url.rsplit('/', 1)[0]}/{bench_db}"
    os.environ["DATABASE_URL"] = bench_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "twin.settings"
    # The settings module was imported above with the real DATABASE_URL: re-read it, or
    # django.setup() would migrate (and load into) the real database.
    importlib.reload(project_settings)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections

    if settings.DATABASES["default"]["NAME"] != bench_db:
        raise RuntimeError(f"refusing to run: Django points at {settings.DATABASES['default']['NAME']!r}, "
                           f"not the scratch database {bench_db!r}")

    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    call_command("migrate", verbosity=0)
    connections.close_all()
    return bench_db, bench_url, cfg


def drop_database(cfg: dict, name: str) -> None:
    with admin_connect(cfg, "postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _points(n: int, seed: int = 8):
    """``n`` lon/lat pairs: uniform over the box plus Gaussian clusters, all inside the box."""
    import numpy as np

    rng = np.random.default_rng(seed)
    parts = []
    for lon, lat, share, sigma in CLUSTERS:
        k = int(n * share)
        parts.append(np.column_stack([rng.normal(lon, sigma, k), rng.normal(lat, sigma, k)]))
    rest = n - sum(len(p) for p in parts)
    parts.append(np.column_stack([rng.uniform(BOX[0], BOX[2], rest), rng.uniform(BOX[1], BOX[3], rest)]))
    pts = np.concatenate(parts)
    outside = (pts[:, 0] < BOX[0]) | (pts[:, 0] > BOX[2]) | (pts[:, 1] < BOX[1]) | (pts[:, 1] > BOX[3])
    pts[outside] = np.column_stack([rng.uniform(BOX[0], BOX[2], outside.sum()),
                                    rng.uniform(BOX[1], BOX[3], outside.sum())])
    return pts[rng.permutation(n)]  # sensors were registered in no spatial order


_PROPERTIES_SQL = """CASE s.i %% 4
    WHEN 0 THEN '{"sensor_type": "air_quality", "unit": "µg/m³", "measures": ["pm25", "pm10"]}'
    WHEN 1 THEN '{"sensor_type": "water_level", "unit": "cm", "measures": ["level"]}'
    WHEN 2 THEN '{"sensor_type": "noise", "unit": "dB", "measures": ["laeq"]}'
    ELSE '{"sensor_type": "temperature", "unit": "°C", "measures": ["temp"]}' END::jsonb"""


def load_points(conn, n: int) -> int:
    """The public sensor layer and its ``n`` points (raw COPY + one INSERT); return the layer id."""
    from twin.models import last_seen_sql
    from twin.services import LayerSpec, ensure_layer

    layer = ensure_layer(LayerSpec(slug=SLUG, title_vi="Cảm biến (benchmark)", title_en="Sensors (benchmark)",
                                   kind="sensor", geometry_type="Point", is_public=True))
    from django.db import connections

    connections.close_all()
    pts = _points(n)
    text = "\n".join(f"{i}\t{lon:.7f}\t{lat:.7f}" for i, (lon, lat) in enumerate(pts.tolist())) + "\n"
    conn.execute("CREATE UNLOGGED TABLE bench_raw (i integer, lon float8, lat float8)")
    with conn.cursor().copy("COPY bench_raw FROM STDIN") as copy:
        data = text.encode()
        for offset in range(0, len(data), 1 << 20):
            copy.write(data[offset:offset + (1 << 20)])
    conn.execute(
        "INSERT INTO twin_feature (layer_id, external_id, name, geom, properties, status, height_m, "
        f"created_at, updated_at) SELECT %s, 's' || s.i, 'Sensor ' || s.i, "
        f"ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326), {_PROPERTIES_SQL}, 'active', NULL, "
        "now(), now() FROM bench_raw s ORDER BY s.i", [layer.pk])
    conn.execute("INSERT INTO twin_deviceliveness (feature_id, last_seen) SELECT f.id, now() - make_interval("
                 "secs => substr(f.external_id, 2)::int %% 3600) FROM twin_feature f WHERE f.layer_id = %s",
                 [layer.pk])
    conn.execute("DROP TABLE bench_raw")
    conn.execute(f"CREATE VIEW {VIEW} AS SELECT id, external_id, name, status, height_m, "
                 f"{last_seen_sql('twin_feature')} AS last_seen, properties, "
                 f"geom FROM twin_feature WHERE layer_id = {int(layer.pk)}")
    conn.execute("VACUUM ANALYZE twin_feature, twin_deviceliveness")
    return layer.pk


def pick_bbox(conn, layer_id: int, target: int = 1000) -> tuple[tuple[float, ...], int]:
    """A square bbox around the middle of the box holding just over ``target`` features."""
    cx, cy = (BOX[0] + BOX[2]) / 2 + 0.02, (BOX[1] + BOX[3]) / 2 + 0.02  # between the clusters: mid density
    lo, hi, best = 0.0005, 0.05, None
    for _ in range(30):
        half = (lo + hi) / 2
        bbox = (round(cx - half, 6), round(cy - half, 6), round(cx + half, 6), round(cy + half, 6))
        count = conn.execute("SELECT count(*) FROM twin_feature WHERE layer_id = %s AND "
                             "ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))", [layer_id, *bbox]
                             ).fetchone()[0]
        if count >= target and (best is None or count < best[1]):
            best = (bbox, count)
        if target <= count <= target * 1.03:
            break
        lo, hi = (half, hi) if count < target else (lo, half)
    return best


def densest_point(conn, layer_id: int) -> tuple[float, float]:
    """Centre of the most crowded ~100 m cell of the layer."""
    row = conn.execute("SELECT (floor(ST_X(geom) / 0.001) + 0.5) * 0.001, (floor(ST_Y(geom) / 0.001) + 0.5) * 0.001,"
                       " count(*) FROM twin_feature WHERE layer_id = %s GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 1",
                       [layer_id]).fetchone()
    return row[0], row[1]


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def true_tile_count(conn, layer_id: int, z: int, x: int, y: int) -> int:
    """Points inside the tile with the half-open convention of our cluster grid (EPSG:3857)."""
    size = 2 * HALF_WORLD / (1 << z)
    left, top = -HALF_WORLD + x * size, HALF_WORLD - y * size
    return conn.execute(
        f"""SELECT count(*) FROM (SELECT {HALF_WORLD} * ST_X(geom) / 180 AS mx,
                   6378137 * ln(tan(pi() / 4 + radians(ST_Y(geom)) / 2)) AS my FROM twin_feature
             WHERE layer_id = %s AND geom && ST_Transform(ST_TileEnvelope(%s, %s, %s, margin => 0.01), 4326)) m
            WHERE mx >= %s AND mx < %s AND my <= %s AND my > %s""",
        [layer_id, z, x, y, left, left + size, top, top - size]).fetchone()[0]


# last_seen as twin.models.last_seen_sql reads it (this module is imported before Django is set up)
FLOOR_SQL = """
SELECT '{"type":"FeatureCollection","features":[' || coalesce(string_agg(feature, ',' ORDER BY id), '') || ']}'
FROM (SELECT f.id, '{"type":"Feature","id":' || to_json(f.external_id)::text
             || ',"geometry":' || ST_AsGeoJSON(f.geom, 7)
             || ',"properties":' || (f.properties || jsonb_build_object('name', f.name, 'status', f.status,
                                     'height_m', f.height_m, 'last_seen', (SELECT dl.last_seen FROM twin_deviceliveness dl
                                                          WHERE dl.feature_id = f.id)))::text || '}' AS feature
      FROM twin_feature f
      WHERE f.layer_id = %s AND ST_Intersects(f.geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))
      ORDER BY f.id LIMIT %s) p
"""


def build_overview(timeout_s: float) -> tuple[float | None, str]:
    """Build the layer's tile overview once, as the first tile after a write would; (seconds, note).

    Done here, in the benchmark's own Django, so that a slow build is timed on its
    own (under a statement timeout) and no tile request below pays for it.
    """
    from django.contrib.auth.models import AnonymousUser
    from django.db import OperationalError, connection, connections, transaction

    from layers.tilecache import layer_with_version
    from layers.tileconfig import tile_config
    from layers.tileoverview import current_overview

    layer = layer_with_version(AnonymousUser(), SLUG)
    began = time.perf_counter()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true), set_config('jit', 'off', true)",
                           [str(int(timeout_s * 1000))])
            overview = current_overview(cursor, layer, tile_config())
    except OperationalError as exc:
        return None, f"failed after {time.perf_counter() - began:.0f} s: {str(exc).strip()[:80]}"
    finally:
        connections.close_all()
    return time.perf_counter() - began, f"clusters up to z{overview.cluster_zoom}"
