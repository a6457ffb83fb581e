# SPDX-License-Identifier: AGPL-3.0-or-later
"""Local timing of vector tiles on a dense point layer (a quick look, not the tipg benchmark).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/citytwin_dev .venv/bin/python bench/tiles_local.py
    ... --points 200000 --keep          # smaller; keep the layer for another run (--reuse)

Loads ``--points`` sensors on a regular grid over a city-sized box (the
box of bench/load.py) into a scratch layer through ``write_features``, then
requests tiles in process through Django's test client (authentication,
access rule, ETag, cache, render: everything but the HTTP server):

* **uncached**: the tile cache is cleared before every request; the
  layer's overview (precomputed clusters) is warm, its cold build is timed
  on its own;
* **cached**: the same tiles again.

With ``--http`` the same tiles are also fetched over HTTP from
``manage.py runserver`` processes this script starts and stops: one with
the tile cache off (``TILE_CACHE_ENTRIES=0``: every request renders), one
with it on (each tile fetched once to fill it, then timed).

Prints p50/p95 per zoom, then deletes the scratch layer unless ``--keep``.
"""
from __future__ import annotations

import argparse
import http.client
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twin.settings")

BBOX = (107.49, 16.39, 107.70, 16.59)  # as bench/load.py
SLUG = "scratch-tiles-bench"
ZOOMS = (10, 13, 16)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def load(points: int):
    import shapely

    from twin.services import FeatureRow, LayerSpec, ensure_layer, write_features

    layer = ensure_layer(LayerSpec(slug=SLUG, title_vi="Cảm biến (thử tile)", kind="sensor",
                                   geometry_type="Point", is_public=True))
    side = max(int(points ** 0.5), 1)
    xs = [BBOX[0] + (BBOX[2] - BBOX[0]) * ((i % side) + 0.5) / side for i in range(points)]
    ys = [BBOX[1] + (BBOX[3] - BBOX[1]) * ((i // side) + 0.5) / side for i in range(points)]
    geoms = shapely.points(xs, ys)
    rows = [FeatureRow(external_id=f"s{i}", name=f"Sensor {i}", geom=geoms[i],
                       properties={"sensor_type": "air_quality", "unit": "µg/m³"}) for i in range(points)]
    started = time.perf_counter()
    write_features(layer, rows)
    print(f"loaded {points:,} points in {time.perf_counter() - started:.1f} s")
    return layer


def sample_tiles(z: int, count: int, rng: random.Random) -> list[tuple[int, int, int]]:
    """Tiles of zoom ``z`` whose whole area lies inside the box (dense ones), or all that touch it."""
    x0, y0 = tile_of(BBOX[0], BBOX[3], z)
    x1, y1 = tile_of(BBOX[2], BBOX[1], z)
    inner = [(z, x, y) for x in range(x0 + 1, x1) for y in range(y0 + 1, y1)]
    tiles = inner or [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    return rng.sample(tiles, min(count, len(tiles)))


def timed_get(client, url: str) -> tuple[float, object]:
    started = time.perf_counter()
    response = client.get(url, HTTP_ACCEPT_ENCODING="gzip")
    return (time.perf_counter() - started) * 1e3, response


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def run(args) -> None:
    from django.core.cache import caches
    from django.test import Client

    from twin.models import Layer

    from twin.services.features import bump_layer_versions

    layer = Layer.objects.filter(slug=SLUG).first() if args.reuse else None
    if layer is None:
        layer = load(args.points)
    else:
        bump_layer_versions([layer.pk])  # a new data version: the overview build below is cold
    client, cache, rng = Client(), caches["tiles"], random.Random(7)
    cache.clear()
    started = time.perf_counter()
    client.get(f"/tiles/{SLUG}")  # TileJSON: builds the overview if it is cold
    print(f"overview build (first TileJSON after the load): {(time.perf_counter() - started) * 1e3:.0f} ms")
    plan = {z: sample_tiles(z, args.tiles, rng) for z in ZOOMS}
    print("in process (Django test client):")
    _header()
    for z, tiles in plan.items():
        cold, warm, sizes = [], [], []
        for _ in range(args.rounds):
            for t in tiles:
                cache.clear()
                ms, response = timed_get(client, _path(t))
                cold.append(ms)
                sizes.append(len(response.content))
        for _ in range(args.rounds):
            for t in tiles:
                warm.append(timed_get(client, _path(t))[0])
        _row(z, tiles, _features_per_tile(layer.pk, tiles), sizes, cold, warm)
    if args.http:
        http_timings(plan, args.rounds, layer.pk)
    if not args.keep:
        cleanup(layer)


def _path(t: tuple[int, int, int]) -> str:
    return f"/tiles/{SLUG}/{t[0]}/{t[1]}/{t[2]}.mvt"


def _header() -> None:
    print(f"{'zoom':>4} {'tiles':>5} {'features/tile':>13} {'KB gz':>6} {'uncached min':>12} {'p50':>7} {'p95':>7} "
          f"{'cached min':>10} {'p50':>6} {'p95':>6}")


def _row(z, tiles, density, sizes, cold, warm) -> None:
    print(f"{z:>4} {len(tiles):>5} {density:>13,.0f} {statistics.mean(sizes) / 1024:>6.1f} "
          f"{min(cold):>10.1f}ms {statistics.median(cold):>5.1f}ms {percentile(cold, 0.95):>5.1f}ms "
          f"{min(warm):>8.2f}ms {statistics.median(warm):>4.2f}ms {percentile(warm, 0.95):>4.2f}ms")


def http_timings(plan: dict, rounds: int, layer_id: int) -> None:
    """Time the same tiles over HTTP (keep-alive, gzip) against our own runserver processes."""
    print("over HTTP (manage.py runserver, one keep-alive connection, Accept-Encoding: gzip):")
    _header()
    results = {}
    for cache_on in (False, True):
        port = _free_port()
        env = {**os.environ, "TILE_CACHE_ENTRIES": "5000" if cache_on else "0", "LOG_LEVEL": "WARNING"}
        server = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                                  cwd=Path(__file__).resolve().parent.parent, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            conn = _connect(port)
            for z, tiles in plan.items():
                times, sizes = [], []
                if cache_on:
                    for t in tiles:
                        _http_get(conn, _path(t))
                for _ in range(rounds):
                    for t in tiles:
                        ms, size = _http_get(conn, _path(t))
                        times.append(ms)
                        sizes.append(size)
                results.setdefault(z, {})[cache_on] = (times, sizes)
        finally:
            server.terminate()
            server.wait(timeout=10)
    for z, tiles in plan.items():
        cold, sizes = results[z][False]
        _row(z, tiles, _features_per_tile(layer_id, tiles), sizes, cold, results[z][True][0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _connect(port: int) -> http.client.HTTPConnection:
    for _ in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            _http_get(conn, "/tiles")
            return conn
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("runserver did not start")


def _http_get(conn: http.client.HTTPConnection, path: str) -> tuple[float, int]:
    started = time.perf_counter()
    conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
    response = conn.getresponse()
    body = response.read()
    return (time.perf_counter() - started) * 1e3, len(body)


def _features_per_tile(layer_id: int, tiles: list[tuple[int, int, int]]) -> float:
    from django.db import connection

    counts = []
    with connection.cursor() as cursor:
        for z, x, y in tiles:
            cursor.execute("SELECT count(*) FROM twin_feature WHERE layer_id + 0 = %s AND "
                           "geom && ST_Transform(ST_TileEnvelope(%s, %s, %s), 4326)", [layer_id, z, x, y])
            counts.append(cursor.fetchone()[0])
    return statistics.mean(counts)


def cleanup(layer) -> None:
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM twin_feature WHERE layer_id = %s", [layer.pk])
        cursor.execute("DELETE FROM twin_tile_cluster WHERE layer_id = %s", [layer.pk])
        cursor.execute("DELETE FROM twin_tile_overview WHERE layer_id = %s", [layer.pk])
        cursor.execute("DELETE FROM twin_layer_data_version WHERE layer_id = %s", [layer.pk])
        layer.delete()
    print(f"scratch layer removed in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--tiles", type=int, default=20, help="tiles sampled per zoom")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the scratch layer afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept scratch layer")
    parser.add_argument("--http", action="store_true", help="also time over HTTP against runserver")
    args = parser.parse_args()
    import django

    django.setup()
    run(args)


if __name__ == "__main__":
    main()
