# SPDX-License-Identifier: AGPL-3.0-or-later
"""Layers API benchmark: our OGC API Features items and vector tiles next to tipg and pygeoapi.

    .venv/bin/python bench/layers.py                   # 1,000,000 points, about 6 minutes
    .venv/bin/python bench/layers.py --features 100000 --duration 5   # quick look

Same table, same rows, same requests, same run:

* a scratch database ``<db>_bench_layers`` on the ``DATABASE_URL`` server
  (dropped afterwards unless ``--keep``), migrated, with one public point
  layer ``bench-points`` of sensors over the Huế box: 45 % uniform, 55 % in
  five Gaussian clusters, so low-zoom tiles are dense. Rows go in with a raw
  COPY (the load path is not under test; ``bench/load.py`` measures it);
* the peers read the same rows through the view ``bench_points``
  (``SELECT ... FROM twin_feature WHERE layer_id = X``): PostgreSQL inlines
  it, so all three servers filter the same table with the same GiST index;
* servers on 127.0.0.1, one worker each (``bench/peers/servers.py``): ours
  (gunicorn gthread 1×8, plus a second instance with a file tile cache that
  is emptied before each "uncached" tile request), tipg (uvicorn, 1 process),
  pygeoapi (gunicorn gthread 1×8); the peers come from PyPI into
  ``.run/peers-venv`` (pinned in ``bench/peers/requirements.txt``);
* the **SQL floor**: one statement that builds our exact FeatureCollection
  text in PostgreSQL, run over psycopg.

Printed: markdown tables with p50/p95, requests/s with ``--clients`` clients,
tile timings per zoom (ours with the tile cache emptied before each request,
then cached), whether dense tiles are cut (tipg: 10,000 arbitrary features)
or aggregated (ours: cluster counts summing to the true count), and the
ratios against the goals of issue 8 with PASS/FAIL.
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.layers_data import (FLOOR_SQL, SLUG, VIEW, admin_connect, build_overview, densest_point,  # noqa: E402
                               drop_database, load_points, pick_bbox, setup_database, tile_of, true_tile_count)
from bench.peers import servers  # noqa: E402

ZOOMS = (10, 13, 16)
# Goals of issue 8.
ITEMS_VS_FLOOR, RPS_VS_TIPG, TILE_VS_TIPG, CACHED_P95_MS = 3.0, 5.0, 0.5, 5.0
TIPG_TILE_CAP = 10_000
ROUNDS = 2  # load windows per server, taken in turns


# -- HTTP -----------------------------------------------------------------------------------------

class Client:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1, reopened after an error."""

    def __init__(self, port: int) -> None:
        import http.client

        self._factory = lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.conn = self._factory()

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        try:
            self.conn.request("GET", path, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        except OSError:
            self.conn.close()
            self.conn = self._factory()
            raise

    def close(self) -> None:
        self.conn.close()


@dataclass
class Timing:
    samples: list[float] = field(default_factory=list)  # milliseconds

    def pct(self, q: float) -> float:
        if not self.samples:
            return float("nan")
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def p95(self) -> float:
        return self.pct(95)


def timed(call, n: int, warmup: int, before=None) -> Timing:
    """``call()`` ``warmup`` times untimed, then ``n`` times timed (``before()`` runs outside the timer)."""
    return interleaved({"call": (call, before)}, n, warmup)["call"]


def interleaved(calls: dict[str, tuple], n: int, warmup: int) -> dict[str, Timing]:
    """Like :func:`timed` for several ``(call, before)`` at once, taking turns request by request.

    The machine is shared: taking turns spreads any burst of outside load
    over every server instead of landing on whichever ran at the time.
    """
    timings = {name: Timing() for name in calls}
    for i in range(warmup + n):
        for name, (call, before) in calls.items():
            if before is not None:
                before()
            started = time.perf_counter()
            call()
            if i >= warmup:
                timings[name].samples.append((time.perf_counter() - started) * 1e3)
    return timings


def http_call(client: Client, path: str, headers: dict[str, str], expect: tuple[int, ...] = (200,)):
    def call():
        status, body, _ = client.get(path, headers)
        if status not in expect:
            raise RuntimeError(f"GET {path} -> {status}: {body[:300]!r}")
        return body
    call.close = client.close  # type: ignore[attr-defined]
    return call


@dataclass
class Load:
    requests: int
    errors: int
    seconds: float
    timing: Timing

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def __add__(self, other: Load) -> Load:
        return Load(self.requests + other.requests, self.errors + other.errors, self.seconds + other.seconds,
                    Timing(self.timing.samples + other.timing.samples))


def under_load(make_call, clients: int, seconds: float) -> Load:
    """``clients`` threads calling as fast as they can for ``seconds``; each gets its own ``make_call()``."""
    calls = [make_call() for _ in range(clients)]
    lock, timing, counts = threading.Lock(), Timing(), {"ok": 0, "err": 0}
    start_gate = threading.Barrier(clients + 1)
    deadline = [0.0]

    def worker(call):
        start_gate.wait()
        local, ok, err = [], 0, 0
        while time.perf_counter() < deadline[0]:
            began = time.perf_counter()
            try:
                call()
                ok += 1
                local.append((time.perf_counter() - began) * 1e3)
            except Exception:  # counted, not fatal: the server may refuse under load
                err += 1
        with lock:
            timing.samples.extend(local)
            counts["ok"] += ok
            counts["err"] += err

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in calls]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start_gate.wait()
    for t in threads:
        t.join()
    for call in calls:
        call.close()
    return Load(counts["ok"], counts["err"], time.perf_counter() - began, timing)


# -- measurements ---------------------------------------------------------------------------------

ITEM_HEADERS = {"Accept": "application/geo+json", "Accept-Encoding": "identity"}
TILE_HEADERS = {"Accept-Encoding": "gzip"}  # what every browser sends; our cache keeps tiles gzipped


@dataclass
class Target:
    """One server and the URLs of the same requests on it."""

    name: str
    port: int
    items: str
    tile: str | None = None  # z/x/y template

    def tile_path(self, z: int, x: int, y: int) -> str:
        return self.tile.format(z=z, x=x, y=y)


def targets(ports: dict[str, int], bbox: tuple[float, ...], limit: int) -> list[Target]:
    b = ",".join(f"{v:.6f}" for v in bbox)
    found = []
    for name in ("ours", "ours-uncached"):
        if name in ports:
            found.append(Target(name, ports[name], f"/collections/{SLUG}/items?bbox={b}&limit={limit}",
                                f"/tiles/{SLUG}/{{z}}/{{x}}/{{y}}.mvt"))
    if "tipg" in ports:
        found.append(Target("tipg", ports["tipg"], f"/collections/public.{VIEW}/items?bbox={b}&limit={limit}",
                            f"/collections/public.{VIEW}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}"))
    if "pygeoapi" in ports:
        found.append(Target("pygeoapi", ports["pygeoapi"], f"/collections/{VIEW}/items?bbox={b}&limit={limit}&f=json"))
    return found


def check_items(target: Target) -> tuple[int, int | None, int]:
    """(features returned, numberMatched, bytes) of one answer, so we know all servers did the same work."""
    client = Client(target.port)
    body = http_call(client, target.items, ITEM_HEADERS)()
    client.close()
    doc = json.loads(body)
    return len(doc["features"]), doc.get("numberMatched"), len(body)


def floor_call(db_url: str, layer_id: int, bbox, limit: int):
    import psycopg

    conn = psycopg.connect(db_url, autocommit=True)
    params = [layer_id, *bbox, limit]

    def call():
        return conn.execute(FLOOR_SQL, params).fetchone()[0]
    call.close = conn.close  # type: ignore[attr-defined]
    return call


def decode_tile(body: bytes, headers: dict[str, str]) -> dict:
    import mapbox_vector_tile

    if not body:
        return {}
    if headers.get("Content-Encoding", headers.get("content-encoding", "")) == "gzip" or body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    return mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})


def tile_content(decoded: dict) -> tuple[int, int, int, int]:
    """(features in the tile proper, clusters among them, points they represent, features incl. buffer)."""
    drawn = clusters = represented = total = 0
    for layer in decoded.values():
        extent = layer.get("extent", 4096)
        for feature in layer["features"]:
            total += 1
            geometry = feature["geometry"]
            if geometry["type"] != "Point":
                continue
            px, py = geometry["coordinates"]
            if not (0 <= px < extent and 0 <= py < extent):
                continue
            drawn += 1
            if feature["properties"].get("cluster"):
                clusters += 1
                represented += int(feature["properties"].get("count", 0))
            else:
                represented += 1
    return drawn, clusters, represented, total


def complete(content: tuple[int, int, int, int] | None, true_count: int) -> bool:
    """Every point of the tile is drawn or counted in a cluster (not cut).

    Cluster counts must add up exactly. Raw points are compared with a
    small tolerance: a point within half a tile unit of the edge rounds
    onto the other side, in either direction.
    """
    if content is None:
        return False
    _, clusters, represented, _ = content
    if clusters:
        return represented == true_count
    return abs(represented - true_count) <= max(2, true_count // 1000)


def clear_dir(path: Path) -> None:
    for entry in path.iterdir():
        if entry.is_file():
            entry.unlink()


@dataclass
class TileResult:
    z: int
    x: int
    y: int
    true_count: int
    in_goal: bool = True  # one of the tiles (densest spot at z10/z13/z16), not an extra
    ours_uncached: Timing | None = None
    ours_cached: Timing | None = None
    tipg: Timing | None = None
    ours_content: tuple[int, int, int, int] | None = None
    tipg_content: tuple[int, int, int, int] | None = None
    ours_bytes: int = 0
    tipg_bytes: int = 0


def _tile_probe(target: Target, z: int, x: int, y: int, cache: str | None = None):
    """(bytes, content) of one answer for the tile; ``cache``: the ``X-Tile-Cache`` it must report."""
    client = Client(target.port)
    _, body, headers = client.get(target.tile_path(z, x, y), TILE_HEADERS)
    client.close()
    if cache is not None and headers.get("X-Tile-Cache") != cache:
        raise RuntimeError(f"{target.name}: tile {z}/{x}/{y} answered X-Tile-Cache "
                           f"{headers.get('X-Tile-Cache')!r}, not {cache!r}: the cache set-up is not what we measure")
    return len(body), tile_content(decode_tile(body, headers))


def measure_tiles(conn, layer_id: int, tiles_at: list[tuple[int, int, int]], by_name: dict[str, Target],
                  cache_dir: Path, n: int) -> list[TileResult]:
    """Per tile, in turns: ours uncached (file cache emptied before each request), tipg; then ours cached."""
    results = []
    uncached, cached, tipg = by_name.get("ours-uncached"), by_name.get("ours"), by_name.get("tipg")
    empty = lambda: clear_dir(cache_dir)  # noqa: E731
    for i, (z, x, y) in enumerate(tiles_at):
        result = TileResult(z, x, y, true_tile_count(conn, layer_id, z, x, y), in_goal=i < len(ZOOMS))
        calls, clients = {}, []
        for key, target, before in (("ours", uncached, empty), ("tipg", tipg, None)):
            if target is not None:
                clients.append(Client(target.port))
                calls[key] = (http_call(clients[-1], target.tile_path(z, x, y), TILE_HEADERS, (200, 204)), before)
        timings = interleaved(calls, n, 2)
        result.ours_uncached, result.tipg = timings.get("ours"), timings.get("tipg")
        if uncached is not None:  # the emptied file cache really made every request above a miss
            empty()
            _tile_probe(uncached, z, x, y, cache="miss")
        if cached is not None:
            result.ours_bytes, result.ours_content = _tile_probe(cached, z, x, y)  # rendered and now stored
            _tile_probe(cached, z, x, y, cache="hit")
            clients.append(Client(cached.port))
            result.ours_cached = timed(http_call(clients[-1], cached.tile_path(z, x, y), TILE_HEADERS, (200, 204)),
                                       max(n, 100), 3)
        if tipg is not None:
            result.tipg_bytes, result.tipg_content = _tile_probe(tipg, z, x, y)
        for client in clients:
            client.close()
        results.append(result)
    return results


# -- report ---------------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _ms(value: float) -> str:
    return "–" if value is None or math.isnan(value) else (f"{value:.1f}" if value < 100 else f"{value:.0f}")


def print_items(seq: dict[str, Timing], shape: dict[str, tuple], floor_bytes: int) -> bool:
    floor = seq["SQL floor"].p50
    print("\n**Items** — one bbox, `limit=1000`, GeoJSON, sequential (ms):\n")
    print("| server | p50 | p95 | features | numberMatched | bytes | p50 / SQL floor |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, timing in seq.items():
        returned, matched, size = shape.get(name, (None, None, floor_bytes))
        print(f"| {name} | {_ms(timing.p50)} | {_ms(timing.p95)} | {returned if returned is not None else '–'} | "
              f"{matched if matched is not None else '–'} | {size:,} | {timing.p50 / floor:.1f}× |")
    ours = seq.get("ours")
    if ours is None:
        return True
    ok = ours.p50 <= ITEMS_VS_FLOOR * floor
    line = f"\nours p50 / SQL floor p50 = {ours.p50 / floor:.2f} (goal ≤ {ITEMS_VS_FLOOR:g}): {verdict(ok)}"
    if "tipg" in seq:
        line += f"; ours / tipg p50 = {ours.p50 / seq['tipg'].p50:.2f} (≈ 0.2 expected)"
    print(line)
    return ok


def print_load(loads: dict[str, Load], clients: int, seconds: float) -> bool:
    print(f"\n**Items under load** — {clients} concurrent clients, {seconds:g} s each:\n")
    print("| server | requests/s | p50 ms | p95 ms | errors |")
    print("|---|---:|---:|---:|---:|")
    for name, load in loads.items():
        print(f"| {name} | {load.rps:,.1f} | {_ms(load.timing.p50)} | {_ms(load.timing.p95)} | {load.errors} |")
    if "ours" not in loads or "tipg" not in loads:
        return True
    ratio = loads["ours"].rps / max(loads["tipg"].rps, 1e-9)
    ok = ratio >= RPS_VS_TIPG
    print(f"\nours / tipg requests/s = {ratio:.1f}× (goal ≥ {RPS_VS_TIPG:g}×): {verdict(ok)}")
    return ok


def _content(content: tuple[int, int, int, int] | None, true_count: int, cap: int | None, size: int) -> str:
    if content is None:
        return "–"
    drawn, clusters, represented, total = content
    kb = f"{size / 1024:,.0f} KB sent"
    if clusters:
        exact = "= true count" if represented == true_count else f"≠ true {true_count:,}"
        return f"{clusters:,} clusters, counts sum {represented:,} ({exact}); {kb}"
    if cap is not None and total >= cap and not complete(content, true_count):
        return f"**cut** at {total:,} features: {drawn:,} of {true_count:,} points; {kb}"
    shown = f"all {drawn:,} points" if complete(content, true_count) else f"{drawn:,} of {true_count:,} points"
    return f"{shown}; {kb}"


def print_tiles(results: list[TileResult], overview: tuple[float | None, str]) -> bool:
    print("\n**Tiles** — the tile over the densest spot at each zoom (the goals), then the z16 tile of the items "
          "bbox (information only); ours uncached = tile cache emptied before every request (ms):\n")
    print("| tile | points in tile | ours uncached p50 / p95 | tipg p50 / p95 | ours / tipg p95 | goal ≤ 0.5 "
          "| ours cached p50 / p95 | goal p95 ≤ 5 ms | ours draws | tipg draws |")
    print("|---|---:|---:|---:|---:|---|---:|---|---|---|")
    ok = True
    for r in results:
        ou, oc, tp = r.ours_uncached, r.ours_cached, r.tipg
        ratio = ou.p95 / tp.p95 if ou and tp else float("nan")
        aggregated = complete(r.ours_content, r.true_count)
        tile_ok = (not math.isnan(ratio) and ratio <= TILE_VS_TIPG and aggregated)
        cached_ok = oc is not None and oc.p95 <= CACHED_P95_MS
        if r.in_goal:
            ok = ok and (tile_ok or tp is None) and cached_ok
        shown = "–" if math.isnan(ratio) else f"{ratio:.2f}"
        name = f"z{r.z}/{r.x}/{r.y}" + ("" if r.in_goal else " (ordinary, info)")
        print(f"| {name} | {r.true_count:,} | {_ms(ou.p50) if ou else '–'} / {_ms(ou.p95) if ou else '–'}"
              f" | {_ms(tp.p50) if tp else '–'} / {_ms(tp.p95) if tp else '–'} | {shown} | "
              f"{verdict(tile_ok) if r.in_goal else 'no goal'} | "
              f"{_ms(oc.p50) if oc else '–'} / {_ms(oc.p95) if oc else '–'} | {verdict(cached_ok)} | "
              f"{_content(r.ours_content, r.true_count, None, r.ours_bytes)} | "
              f"{_content(r.tipg_content, r.true_count, TIPG_TILE_CAP, r.tipg_bytes)} |")
    seconds, note = overview
    shown = f"{seconds:.1f} s ({note})" if seconds is not None else f"**{note}**; our tiles not measured"
    print(f"\nOverview build, once per data version of the layer: {shown}. The first tile of a new layer waits "
          "for it; after a write, layers of ≥ background_rebuild_min points rebuild it in a thread while dense "
          "tiles are drawn from the previous one (docs/tiles.md).")
    return ok and seconds is not None


# -- main -----------------------------------------------------------------------------------------

def start_servers(names: list[str], db_url: str, db_cfg: dict, workdir: Path, cache_dir: Path,
                  running: list, ours_kind: str = "gunicorn") -> None:
    """Start the servers, appending each to ``running`` at once so the caller stops it whatever happens."""
    if any(n in names for n in ("tipg", "pygeoapi")):
        servers.ensure_peers_venv()
    db = {"host": db_cfg["HOST"] or "127.0.0.1", "port": db_cfg["PORT"] or 5432, "name": db_cfg["NAME"],
          "user": db_cfg["USER"] or "postgres", "password": db_cfg["PASSWORD"]}
    ready = {"ours": f"/collections/{SLUG}/items?limit=1", "tipg": f"/collections/public.{VIEW}/items?limit=1",
             "pygeoapi": f"/collections/{VIEW}/items?limit=1&f=json"}
    if "ours" in names:
        names = [*names, "ours-uncached"]
        ready["ours-uncached"] = ready["ours"]
    for name in names:
        if name == "ours":
            running.append(servers.start_ours(db_url, workdir, kind=ours_kind))
        elif name == "ours-uncached":
            running.append(servers.start_ours(db_url, workdir, cache_dir, name, kind=ours_kind))
        elif name == "tipg":
            running.append(servers.start_tipg(db_url, workdir))
        else:
            running.append(servers.start_pygeoapi(db, workdir))
    for server in running:
        servers.wait_ready(server, ready[server.name])


def run(args, conn, db_url: str, layer_id: int, ports: dict[str, int], cache_dir: Path,
        overview: tuple[float | None, str]) -> bool:
    bbox, matched = pick_bbox(conn, layer_id)
    lon, lat = densest_point(conn, layer_id)
    print(f"bbox {bbox} holds {matched:,} features; densest spot {lon:.4f}, {lat:.4f}", file=sys.stderr)
    everything = targets(ports, bbox, args.limit)
    by_name = {t.name: t for t in everything}
    found = [t for t in everything if t.name != "ours-uncached"]  # items: the default instance only
    floor = floor_call(db_url, layer_id, bbox, args.limit)
    floor_bytes = len(floor())
    shape = {t.name: check_items(t) for t in found}
    clients = {t.name: Client(t.port) for t in found}
    calls = {"SQL floor": (floor, None)}
    calls.update({t.name: (http_call(clients[t.name], t.items, ITEM_HEADERS), None) for t in found})
    seq = interleaved(calls, args.requests, 5)
    for client in clients.values():
        client.close()
    makers = {"SQL floor": lambda: floor_call(db_url, layer_id, bbox, args.limit)}
    makers.update({t.name: (lambda t=t: http_call(Client(t.port), t.items, ITEM_HEADERS)) for t in found})
    loads: dict[str, Load] = {}
    for _ in range(ROUNDS):  # in turns, for the same reason as interleaved()
        for name, make in makers.items():
            load = under_load(make, args.clients, args.duration / ROUNDS)
            loads[name] = loads[name] + load if name in loads else load
    # The densest spot at each zoom, plus the z16 tile of the items bbox: an ordinary street-level tile.
    tiles_at = [tile_of(lon, lat, z) for z in ZOOMS]
    tiles_at.append(tile_of((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, 16))
    if overview[0] is None:  # no overview: every tile request of ours would try to build it
        by_name = {k: v for k, v in by_name.items() if not k.startswith("ours")}
    results = measure_tiles(conn, layer_id, tiles_at, by_name, cache_dir, args.tile_requests)
    print(f"\n{args.features:,} points, bbox of {matched:,} features, `limit={args.limit}`; one worker per server "
          f"(ours: {args.ours_server}); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    ok = print_items(seq, shape, floor_bytes)
    ok = print_load(loads, args.clients, args.duration) and ok
    ok = print_tiles(results, overview) and ok
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50, help="sequential timed requests per server")
    parser.add_argument("--tile-requests", type=int, default=30, help="timed requests per tile and server")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients for requests/s")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per server")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--servers", default="ours,tipg,pygeoapi", help="comma-separated subset")
    parser.add_argument("--ours-server", choices=("gunicorn", "daphne"), default="gunicorn",
                        help="serve ours with WSGI (gunicorn, one gthread worker) or ASGI (daphne, one process)")
    parser.add_argument("--overview-timeout", type=float, default=120.0,
                        help="seconds allowed for building the layer's tile overview")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    names = [n for n in ("ours", "tipg", "pygeoapi") if n in args.servers.split(",")]
    bench_db, db_url, cfg = setup_database()
    workdir = Path(tempfile.mkdtemp(prefix="citytwin-bench-layers-"))
    cache_dir = workdir / "tile-cache"
    cache_dir.mkdir()
    running = []
    try:
        with admin_connect(cfg, bench_db) as conn:
            began = time.perf_counter()
            layer_id = load_points(conn, args.features)
            print(f"loaded {args.features:,} points in {time.perf_counter() - began:.0f} s", file=sys.stderr)
            overview = build_overview(args.overview_timeout)
            print(f"tile overview: {overview}", file=sys.stderr)
            start_servers(names, db_url, {**cfg, "NAME": bench_db}, workdir, cache_dir, running, args.ours_server)
            ok = run(args, conn, db_url, layer_id, {s.name: s.port for s in running}, cache_dir, overview)
        return 0 if ok else 1
    finally:
        for server in running:
            server.stop()
        if not args.keep:
            drop_database(cfg, bench_db)
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept database {bench_db} and {workdir}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
