# SPDX-License-Identifier: AGPL-3.0-or-later
"""Citizen reports benchmark: filing throughput with photos, routing time per report (issue 7).

    .venv/bin/python bench/reports.py                          # defaults below, a few minutes
    .venv/bin/python bench/reports.py --reports 300 --routes 1000 --threads 1,8,32

Runs against a scratch database ``<db>_bench_reports`` on the ``DATABASE_URL``
server (created, migrated, Huế loaded; dropped afterwards unless ``--keep``),
its photos in a scratch media store beside the project's (removed with it):

* **agencies**: Huế's own (9 city units + 40 ward People's Committees) plus
  generated ward-level units until there are ``--agencies`` (default 150):
  an urban-order team, a sanitation team and so on per ward, each with its
  ward as jurisdiction and a few report categories, so the routing chain has
  real choices to make at every step; 40 wards (the real outlines);
* **routing**: ``reports.services.routing.route_report`` (the geo-event
  routing chain of ``ingestion/routing.py``: ward candidates within 10 m on
  geography, province, then the chain's agency queries) for random points
  inside random wards and random categories, timed one by one;
* **filing**: ``reports.services.intake.file_report`` end to end (text and
  media checks, metadata stripping, the photo written to the media store,
  routing, then the report, reporter, media, steps, the feature, the
  geo-event and the citizen's notification written by the group-commit
  writer, which puts the filings waiting at the same moment in one
  transaction; the call returns after that commit, with the live
  announcement and the duplicate check), each with its own photo of
  ``--photo`` pixels (a JPEG carrying EXIF GPS; every filing's bytes differ,
  see :class:`Photos`), from 1, 8, 32 submitting threads (own connections) —
  a threaded server's concurrent requests. Live announcing (MQTT) stays as
  configured. A warm-up of 40 filings (imports, query plans, the routing
  memory) runs first and is not counted;
* **filing over HTTP** (``--http daphne,gunicorn``): Open311 ``POST
  requests.json`` multipart with the photo, from ``--http-clients`` client
  threads, to a server process on the scratch database — ``daphne``: ``twin
  runserver`` exactly as ``make demo`` serves it (ASGI); ``gunicorn``:
  ``twin.wsgi`` with one gthread worker of ``--http-clients`` threads (``gunicorn:N``: N
  worker processes of that many threads in all, each with its own group-commit writer), so
  every client has a server thread. Each request has its
  own ``api_key`` (the Open311 rate-limit key), so the per-client limit does
  not refuse the benchmark's single address.

Besides the rates, each in-process filing setting reports the **CPU per
report**: this process's (all threads, ``getrusage``) and the PostgreSQL
backends' of the scratch database (sampled from ``/proc``; the server is
local). Rates swing with the load other work puts on the shared cores; the
CPU a filing costs hardly does.

Goals (issue 7): routing p95 ≤ 50 ms with 150 agencies and 40 wards;
filing ≥ 200 reports/s with photos on this machine.
"""
from __future__ import annotations

import argparse
import importlib
import io
import itertools
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROUTING_P95_MS, FILING_PER_S = 50.0, 200.0
EXTRA_UNITS = [  # generated ward-level units: (code suffix, name, categories)
    ("tt", "Đội Trật tự đô thị", ["sidewalk_encroachment", "street_vending", "illegal_advertising",
                                  "phone_advertising"]),
    ("vs", "Tổ Vệ sinh môi trường", ["waste", "drainage"]),
    ("cx", "Tổ Cây xanh – Chiếu sáng", ["trees", "lighting"]),
    ("xd", "Tổ Quản lý xây dựng", ["construction"]),
]


def setup_database(keep_name: str | None = None):
    import dj_database_url
    import psycopg

    from twin import settings as project_settings

    url = project_settings.DATABASE_URL
    cfg = dj_database_url.parse(url)
    name = f"{cfg['NAME']}_bench_reports"
    admin = dict(host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"], password=cfg["PASSWORD"] or None,
                 dbname="postgres", autocommit=True)
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template1')
    os.environ["DATABASE_URL"] = f"{url.rsplit('/', 1)[0]}/{name}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "twin.settings"
    # The filed photos go to a scratch store beside the project's (same disk), removed with the database;
    # a store left by ``--keep`` goes with the database it belonged to, dropped above.
    media_parent = Path(project_settings.REPORTS_MEDIA_DIR).parent
    for kept in media_parent.glob(f"{name}-media-*"):
        shutil.rmtree(kept, ignore_errors=True)
    os.environ["REPORTS_MEDIA_DIR"] = tempfile.mkdtemp(prefix=f"{name}-media-", dir=media_parent)
    importlib.reload(project_settings)   # re-read DATABASE_URL: never touch the real database
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    if settings.DATABASES["default"]["NAME"] != name:
        raise RuntimeError(f"refusing to run: Django points at {settings.DATABASES['default']['NAME']!r}")
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    call_command("migrate", verbosity=0)
    call_command("load_city", verbosity=0)
    call_command("load_report_categories", verbosity=0)
    return name, admin


def add_agencies(total: int) -> tuple[int, int]:
    from twin.models import AdminArea, AdminLevel, Agency

    wards = list(AdminArea.objects.filter(level=AdminLevel.WARD).order_by("code"))
    made = 0
    for suffix, name, categories in EXTRA_UNITS:
        for ward in wards:
            if Agency.objects.count() >= total:
                break
            agency = Agency.objects.create(code=f"{suffix}-{ward.code}", name_vi=f"{name} {ward.name_vi}",
                                           categories=categories)
            agency.jurisdiction.add(ward)
            made += 1
    return Agency.objects.count(), len(wards)


def random_points(n: int, seed: int = 7):
    import shapely

    from reports.models import ReportCategory
    from twin.models import AdminArea, AdminLevel

    rng = random.Random(seed)
    wards = [shapely.from_wkb(bytes(w.geom.wkb)) for w in AdminArea.objects.filter(level=AdminLevel.WARD)]
    categories = list(ReportCategory.objects.values_list("code", "route_as"))
    out = []
    while len(out) < n:
        geom = rng.choice(wards)
        minx, miny, maxx, maxy = geom.bounds
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if geom.contains(shapely.Point(x, y)):
            out.append((x, y, *rng.choice(categories)))
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def bench_routing(n: int) -> dict:
    from django.contrib.gis.geos import Point

    from reports.services.routing import route_report

    points = random_points(n)
    for lon, lat, _, route_as in points[:50]:           # warm-up (connection, plans)
        route_report(Point(lon, lat, srid=4326), route_as)
    times, steps = [], {}
    for lon, lat, _, route_as in points:
        start = time.perf_counter()
        route = route_report(Point(lon, lat, srid=4326), route_as)
        times.append((time.perf_counter() - start) * 1000)
        steps[route.step] = steps.get(route.step, 0) + 1
    return {"n": n, "p50": statistics.median(times), "p95": pct(times, 95), "p99": pct(times, 99),
            "max": max(times), "steps": steps}


def photo_bytes(size: tuple[int, int]) -> bytes:
    import numpy as np
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(3)
    w, h = size
    base = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize(size, Image.BILINEAR).filter(ImageFilter.GaussianBlur(2))
    noise = Image.fromarray(rng.integers(0, 40, (h, w, 3), dtype=np.uint8))
    image = Image.blend(image, noise, 0.15)
    exif = Image.Exif()
    exif[0x010F] = "BenchCam"
    exif.get_ifd(0x8825).update({1: "N", 2: (16.0, 27.0, 50.0), 3: "E", 4: (107.0, 35.0, 20.0)})
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85, exif=exif)
    return out.getvalue()


class Photos:
    """Distinct photos for every filing: the bench's JPEG with two quantisation entries changed.

    Why: the media store keeps one file per content (SHA-256), so filing the
    same bytes again writes nothing — a bench of one photo measured filings
    that never wrote their photo. Real photos all differ. Changing the last two
    entries of the first quantisation table (the highest frequencies, coarser
    by a step) gives a valid JPEG that decodes to nearly the same picture and
    survives metadata stripping, for 64,770 variants at no encoding cost.
    """

    def __init__(self, photo: bytes) -> None:
        at = 2                                       # after SOI, segments follow each other up to the scan
        while photo[at + 1] != 0xDB:                 # DQT
            at += 2 + int.from_bytes(photo[at + 2:at + 4], "big")
        if photo[at + 4] >> 4:                       # 16-bit tables: not what Pillow writes at quality 85
            raise ValueError("the bench photo's first quantisation table is not 8-bit")
        self.base, self.last = photo, at + 4 + 64    # the table's 64th entry
        self.counter = itertools.count()
        self.size = len(photo)

    def take(self) -> bytes:
        i = next(self.counter) % (255 * 254)
        high, low = divmod(i, 255)
        return self.base[:self.last - 1] + bytes((2 + high, 1 + low)) + self.base[self.last + 1:]


class PgCpu(threading.Thread):
    """CPU seconds used by the PostgreSQL backends of one database (sampled from /proc every 0.1 s).

    Why: on a shared machine the rates swing with the neighbours' load; the
    CPU each filing costs does not, so it is what changes are judged on. The
    server runs on this machine (the project's local PostgreSQL); backends
    that end between two samples lose at most 0.1 s of their tail.
    """

    def __init__(self, admin: dict, dbname: str) -> None:
        super().__init__(daemon=True)
        self.admin, self.dbname, self.seen, self.done = admin, dbname, {}, threading.Event()
        self.start()
        time.sleep(0.3)
        self.base = dict(self.seen)

    def run(self) -> None:
        import psycopg

        tick = os.sysconf("SC_CLK_TCK")
        with psycopg.connect(**{**self.admin, "dbname": "postgres"}) as conn:
            while not self.done.is_set():
                for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                           (self.dbname,)).fetchall():
                    try:
                        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    self.seen[pid] = (int(fields[11]) + int(fields[12])) / tick
                self.done.wait(0.1)

    def stop(self) -> float:
        time.sleep(0.2)
        self.done.set()
        self.join()
        return sum(v - self.base.get(pid, 0.0) for pid, v in self.seen.items())


def bench_filing(n: int, threads: int, photos: Photos, cpu_probe=None) -> dict:
    from django.db import connection

    from reports.services.intake import ReportDraft, file_report
    from reports.services.media import MediaUpload

    points = random_points(n, seed=threads)
    chunks = [points[i::threads] for i in range(threads)]
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def work(chunk):
        try:
            for lon, lat, code, _ in chunk:
                start = time.perf_counter()
                try:
                    file_report(ReportDraft(category=code, lon=lon, lat=lat, description="Benchmark: rác tồn đọng",
                                            media=(MediaUpload("p.jpg", photos.take()),), actor_label="bench"))
                except Exception as exc:  # counted and shown, not hidden
                    errors.append(f"({lon:.6f}, {lat:.6f}) {exc!r}")
                    continue
                with lock:
                    latencies.append((time.perf_counter() - start) * 1000)
        finally:
            connection.close()

    workers = [threading.Thread(target=work, args=(c,)) for c in chunks]
    pg = cpu_probe() if cpu_probe else None
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    elapsed = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    pg_s = pg.stop() if pg else float("nan")
    if not latencies:
        raise RuntimeError(f"every filing failed: {errors}")
    py_s = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    return {"threads": threads, "n": len(latencies), "per_s": len(latencies) / elapsed, "p50": statistics.median(latencies),
            "p95": pct(latencies, 95), "errors": errors[:3], "failed": len(errors),
            "py_ms": py_s / len(latencies) * 1000, "pg_ms": pg_s / len(latencies) * 1000}


def warm_up(photos: Photos) -> None:
    """File a few reports first (imports, plans, routing memory); not counted."""
    bench_filing(40, 8, photos)


def start_server(kind: str, port: int, threads: int = 32) -> "subprocess.Popen":
    import subprocess
    import urllib.request

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-reports-not-secret")}
    if kind == "daphne":       # what `make demo` runs (scripts/demo-live.sh): Daphne's runserver, ASGI
        cmd = [str(root / ".venv/bin/twin"), "runserver", "--noreload", f"127.0.0.1:{port}"]
    elif kind.split(":")[0] == "gunicorn":   # a threaded WSGI server; gunicorn:N = N worker processes
        workers = int(kind.split(":")[1]) if ":" in kind else 1
        cmd = [str(root / ".venv/bin/gunicorn"), "twin.wsgi", "-k", "gthread",
               "--threads", str(max(1, threads // workers)),
               "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    else:
        raise SystemExit(f"--http: unknown server {kind!r} (daphne, gunicorn, gunicorn:N)")
    log = open(f"/tmp/bench-reports-{kind.replace(':', '-')}.log", "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/open311/v2/services.json", timeout=2).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} exited; see /tmp/bench-reports-{kind.replace(':', '-')}.log") from None
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"{kind} did not answer within 40 s")


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants (a server and its workers)."""
    total, todo = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


def multipart_body(fields: dict[str, str], photo_part: bytes, boundary: str) -> bytes:
    """A multipart/form-data body: the text fields, then the photo part (its headers, the photo, CRLF)."""
    head = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
                    for name, value in fields.items())
    return head + photo_part + f"--{boundary}--\r\n".encode()


def bench_http(kind: str, n: int, clients: int, photos: Photos, cpu_probe=None) -> dict:
    """Open311 POSTs with one photo each from ``clients`` threads to a server process.

    The client is lean on purpose (``http.client``, one kept-alive connection per
    thread, the photo part's headers encoded once): it shares the two cores with
    the server, and ``requests`` building each 240 KB body spent 3.4 ms of CPU a
    report (24 Nov, evening) that real clients, on their own phones, do not take
    from the server. Its CPU is still measured and printed.
    """
    import http.client
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = start_server(kind, port, clients)
    path = "/open311/v2/requests.json"
    boundary = "citytwin-bench-7f3a9c"
    photo_head = (f'--{boundary}\r\nContent-Disposition: form-data; name="media"; filename="p.jpg"\r\n'
                  f"Content-Type: image/jpeg\r\n\r\n").encode()
    points = random_points(n + 40, seed=100 + clients)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(10**9))

    def post(conn, lon, lat, code) -> None:
        body = multipart_body({"service_code": code, "lat": str(lat), "long": str(lon),
                               "description": "Benchmark: rác tồn đọng", "api_key": f"bench-{next(counter)}"},
                              photo_head + photos.take() + b"\r\n", boundary)
        start = time.perf_counter()
        conn.request("POST", path, body=body,
                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        response = conn.getresponse()
        text = response.read()
        with lock:
            if response.status == 200:
                latencies.append((time.perf_counter() - start) * 1000)
            else:
                errors.append(f"{response.status} {text[:120]!r}")

    def work(chunk) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            for lon, lat, code, _ in chunk:
                try:
                    post(conn, lon, lat, code)
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        errors.append(repr(exc))
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        finally:
            conn.close()

    def run(batch: list) -> float:
        chunks = [batch[i::clients] for i in range(clients)]
        threads = [threading.Thread(target=work, args=(c,)) for c in chunks]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - start

    try:
        run(points[:40])                              # warm-up, not counted
        latencies.clear()
        errors.clear()
        pg = cpu_probe() if cpu_probe else None
        # client CPU: this process (the posting threads) shares the two cores with the server and PostgreSQL
        server0, client0 = tree_cpu_s(proc.pid), time.process_time()
        elapsed = run(points[40:])
        server_s, client_s = tree_cpu_s(proc.pid) - server0, time.process_time() - client0
        pg_s = pg.stop() if pg else float("nan")
    finally:
        proc.terminate()
        proc.wait(30)
    if not latencies:
        raise RuntimeError(f"every HTTP filing failed: {errors[:3]}")
    return {"server": kind, "threads": clients, "n": len(latencies), "per_s": len(latencies) / elapsed,
            "p50": statistics.median(latencies), "p95": pct(latencies, 95), "errors": errors[:3],
            "failed": len(errors), "py_ms": server_s / len(latencies) * 1000, "pg_ms": pg_s / len(latencies) * 1000,
            "client_ms": client_s / len(latencies) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agencies", type=int, default=150)
    parser.add_argument("--routes", type=int, default=2000)
    parser.add_argument("--reports", type=int, default=400, help="reports filed per thread setting")
    parser.add_argument("--threads", default="1,8,32")
    parser.add_argument("--photo", default="1280x960", help="photo size WxH")
    parser.add_argument("--http", default="", help="also file over HTTP through these servers: daphne,gunicorn,gunicorn:2")
    parser.add_argument("--http-clients", type=int, default=32, help="client threads for --http")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    from bench.ingest_support import machine

    print(f"# bench/reports.py — {machine()}", flush=True)
    t0 = time.perf_counter()
    name, admin = setup_database()
    print(f"scratch database {name} ready in {time.perf_counter() - t0:.0f} s")
    agencies, wards = add_agencies(args.agencies)
    print(f"{agencies} agencies, {wards} wards")
    try:
        routing = bench_routing(args.routes)
        w, h = (int(v) for v in args.photo.lower().split("x"))
        photos = Photos(photo_bytes((w, h)))
        warm_up(photos)
        probe = lambda: PgCpu(admin, name)  # noqa: E731
        filing = [bench_filing(args.reports, int(t), photos, probe) for t in args.threads.split(",") if t]
        http = [bench_http(kind, args.reports, args.http_clients, photos, probe) for kind in args.http.split(",") if kind]
    finally:
        from reports.services.batcher import stop

        stop()                                   # the writer thread's connection
        if not args.keep:
            from django.db import connections

            connections.close_all()
            import psycopg

            with psycopg.connect(**admin) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            shutil.rmtree(os.environ["REPORTS_MEDIA_DIR"], ignore_errors=True)
    verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    print(f"\n### Routing ({routing['n']} reports, {agencies} agencies, {wards} wards)\n")
    print("| p50 ms | p95 ms | p99 ms | max ms | goal p95 ≤ 50 ms |\n|---:|---:|---:|---:|---|")
    print(f"| {routing['p50']:.2f} | {routing['p95']:.2f} | {routing['p99']:.2f} | {routing['max']:.1f} | "
          f"{verdict(routing['p95'] <= ROUTING_P95_MS)} |")
    print(f"\nsteps that decided: {routing['steps']}")
    print(f"\n### Filing with one {args.photo} photo ({photos.size // 1024} KiB JPEG with EXIF, each distinct) "
          "per report\n")
    print("| threads | reports | reports/s | p50 ms | p95 ms | CPU ms/report: Python / PostgreSQL | goal ≥ 200/s |\n"
          "|---:|---:|---:|---:|---:|---:|---|")
    for f in filing:
        print(f"| {f['threads']} | {f['n']} | {f['per_s']:.1f} | {f['p50']:.1f} | {f['p95']:.1f} | "
              f"{f['py_ms']:.1f} / {f['pg_ms']:.1f} | "
              f"{verdict(f['per_s'] >= FILING_PER_S)} |" + (f" {f['failed']} failed, e.g. {f['errors']}" if f["errors"] else ""))
    if http:
        print(f"\n### Filing over HTTP (Open311 POST, multipart, one {args.photo} photo, each distinct)\n")
        print("| server | client threads | reports | reports/s | p50 ms | p95 ms | CPU ms/report: server / PostgreSQL | "
              "client CPU ms | goal ≥ 200/s |\n|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for f in http:
            print(f"| {f['server']} | {f['threads']} | {f['n']} | {f['per_s']:.1f} | {f['p50']:.1f} | {f['p95']:.1f} | "
                  f"{f['py_ms']:.1f} / {f['pg_ms']:.1f} | {f['client_ms']:.1f} | "
                  f"{verdict(f['per_s'] >= FILING_PER_S)} |" + (f" {f['failed']} failed, e.g. {f['errors']}"
                                                                if f["errors"] else ""))


if __name__ == "__main__":
    main()
