# SPDX-License-Identifier: AGPL-3.0-or-later
"""Bulk-load benchmark: the project's load path next to a raw COPY, same rows, same run.

    .venv/bin/python bench/load.py                       # 1,000,000 features, 10,000,000 observations
    .venv/bin/python bench/load.py --features 100000 --observations 1000000   # quick look

It creates (and afterwards drops) a scratch database ``<db>_bench`` on the
server of ``DATABASE_URL`` so no real data is touched, migrates it, then for
each table:

* **raw COPY** — the peer: rows pre-rendered to COPY text outside the timer,
  then one ``COPY ... FROM STDIN`` straight into the same indexed table;
* **project path** — ``twin.services.write_features`` (kind validation,
  geometry checks, COPY to staging, upsert) and
  ``twin.services.record_observations`` (feature-id check, partitions, COPY),
  timed end to end from Python objects.

The table is emptied and CHECKPOINTed before each measurement so both start
alike. The project's path must reach at least 50 % of raw COPY.
"""
from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BBOX = (107.49, 16.39, 107.70, 16.59)  # a city-sized box; no city row, so no extent check
TARGET_RATIO = 0.5


def _setup_database() -> str:
    """Point Django at a fresh scratch database and migrate it."""
    import dj_database_url
    import psycopg

    from twin import settings as project_settings

    url = project_settings.DATABASE_URL
    cfg = dj_database_url.parse(url)
    bench_db = f"{cfg['NAME']}_bench"
    admin = psycopg.connect(host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"],
                            password=cfg["PASSWORD"] or None, dbname="postgres", autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}"')
    admin.execute(f'CREATE DATABASE "{bench_db}" TEMPLATE template1')
    admin.close()
    base = url.rsplit("/", 1)[0]
    os.environ["DATABASE_URL"] = f"{base}/{bench_db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twin.settings")
    # twin.settings was imported above with the real DATABASE_URL: re-read it,
    # or django.setup() would migrate (and TRUNCATE) the real database.
    importlib.reload(project_settings)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if settings.DATABASES["default"]["NAME"] != bench_db:
        raise RuntimeError(f"refusing to run: Django points at {settings.DATABASES['default']['NAME']!r}, "
                           f"not the scratch database {bench_db!r}")

    with _connection().cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    call_command("migrate", verbosity=0)
    return bench_db


def _drop_database(name: str) -> None:
    from django.db import connections

    connections.close_all()
    import dj_database_url
    import psycopg

    cfg = dj_database_url.parse(os.environ["DATABASE_URL"])
    admin = psycopg.connect(host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"],
                            password=cfg["PASSWORD"] or None, dbname="postgres", autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


def _connection():
    from django.db import connection

    return connection


def _reset(table: str) -> None:
    with _connection().cursor() as cursor:
        cursor.execute(f"TRUNCATE {table} CASCADE")
        cursor.execute("CHECKPOINT")


def _point(i: int, n: int) -> tuple[float, float]:
    side = max(int(n ** 0.5), 1)
    x, y = i % side, i // side
    return (BBOX[0] + (BBOX[2] - BBOX[0]) * (x + 0.5) / side, BBOX[1] + (BBOX[3] - BBOX[1]) * (y + 0.5) / side)


def _properties(i: int) -> dict:
    return {"sensor_type": "air_quality", "unit": "µg/m³", "measures": ["pm25", "pm10"]}


def _fresh_layer():
    """Empty the feature table (and what references it) and make the benchmark layer."""
    from twin.services import LayerSpec, ensure_layer

    _reset("twin_feature")
    return ensure_layer(LayerSpec(slug="bench-sensors", title_vi="Cảm biến (benchmark)", kind="sensor",
                                  geometry_type="Point"))


def _raw_feature_copy(n: int) -> float:
    """Peer: pre-rendered COPY text straight into twin_feature."""
    import shapely

    layer_id = _fresh_layer().pk
    buffer = io.StringIO()
    for i in range(n):
        lon, lat = _point(i, n)
        wkb = shapely.to_wkb(shapely.set_srid(shapely.Point(lon, lat), 4326), hex=True, include_srid=True)
        props = json.dumps(_properties(i), ensure_ascii=False)
        buffer.write(f"{layer_id}\ts{i}\tSensor {i}\t{wkb}\t{props}\tactive\t\\N\tnow\tnow\n")
    data = buffer.getvalue().encode()
    with _connection().cursor() as cursor:
        cursor.execute("CHECKPOINT")
    started = time.perf_counter()
    with _connection().cursor() as cursor, cursor.cursor.copy(
        "COPY twin_feature (layer_id, external_id, name, geom, properties, status, height_m, created_at, updated_at)"
        " FROM STDIN"
    ) as copy:
        for offset in range(0, len(data), 1 << 20):
            copy.write(data[offset:offset + (1 << 20)])
    return time.perf_counter() - started


def _project_feature_load(n: int):
    import shapely

    from twin.services import FeatureRow, write_features

    layer = _fresh_layer()
    points = shapely.points([_point(i, n) for i in range(n)])
    rows = [FeatureRow(external_id=f"s{i}", name=f"Sensor {i}", geom=points[i], properties=_properties(i))
            for i in range(n)]
    with _connection().cursor() as cursor:
        cursor.execute("CHECKPOINT")
    started = time.perf_counter()
    write_features(layer, rows)
    return time.perf_counter() - started, layer


def _observation_times(n: int, sensors: int) -> tuple[datetime, int]:
    per_sensor = max(n // sensors, 1)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return start, per_sensor


def _raw_observation_copy(feature_ids: list[int], n: int) -> float:
    """Peer: pre-rendered COPY text straight into the partitioned table, in 1M-row chunks."""
    from twin.services import ensure_partitions

    start, per_sensor = _observation_times(n, len(feature_ids))
    ensure_partitions(start, start + timedelta(hours=per_sensor))
    _reset("twin_observation")
    elapsed = 0.0
    chunk = 1_000_000
    for first in range(0, n, chunk):
        lines = []
        for i in range(first, min(first + chunk, n)):
            fid = feature_ids[i % len(feature_ids)]
            moment = start + timedelta(hours=i // len(feature_ids))
            lines.append(f"{fid}\t{moment.isoformat()}\t{{\"pm25\": {i % 300}}}\t\\N\n")
        data = "".join(lines).encode()
        began = time.perf_counter()
        with _connection().cursor() as cursor, cursor.cursor.copy(
            'COPY twin_observation (feature_id, time, "values", position) FROM STDIN'
        ) as copy:
            for offset in range(0, len(data), 1 << 20):
                copy.write(data[offset:offset + (1 << 20)])
        elapsed += time.perf_counter() - began
    return elapsed


def _project_observation_load(feature_ids: list[int], n: int) -> float:
    """Project path from Python objects, built outside the timer in the peer's 1M-row chunks."""
    from twin.services import ObservationRow, record_observations

    start, _ = _observation_times(n, len(feature_ids))
    _reset("twin_observation")
    count = len(feature_ids)
    elapsed, inserted, chunk = 0.0, 0, 1_000_000
    for first in range(0, n, chunk):
        rows = [ObservationRow(feature_ids[i % count], start + timedelta(hours=i // count), {"pm25": i % 300})
                for i in range(first, min(first + chunk, n))]
        began = time.perf_counter()
        inserted += record_observations(rows).inserted
        elapsed += time.perf_counter() - began
    if inserted != n:
        raise RuntimeError(f"project path wrote {inserted} of {n} observations")
    return elapsed


def _line(what: str, n: int, raw: float, project: float) -> str:
    ratio = raw / project
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    return (f"| {what} | {n:,} | {n / raw:,.0f} | {n / project:,.0f} | {ratio:.0%} | {verdict} (≥ 50 %) |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--observations", type=int, default=10_000_000)
    parser.add_argument("--sensors", type=int, default=10_000, help="features the observations belong to")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    bench_db = _setup_database()
    try:
        from twin.models import Feature

        raw_f = _raw_feature_copy(args.features)
        project_f, layer = _project_feature_load(args.features)
        ids = list(Feature.objects.filter(layer=layer).order_by("id").values_list("id", flat=True)[: args.sensors])
        raw_o = _raw_observation_copy(ids, args.observations)
        project_o = _project_observation_load(ids, args.observations)
        print("| table | rows | raw COPY rows/s | project path rows/s | project / raw | target |")
        print("|---|---:|---:|---:|---:|---|")
        print(_line("features (points)", args.features, raw_f, project_f))
        print(_line("observations", args.observations, raw_o, project_o))
        ok = raw_f / project_f >= TARGET_RATIO and raw_o / project_o >= TARGET_RATIO
        return 0 if ok else 1
    finally:
        if not args.keep:
            _drop_database(bench_db)


if __name__ == "__main__":
    raise SystemExit(main())
