# SPDX-License-Identifier: AGPL-3.0-or-later
"""MQTT ingestion benchmark: readings committed per second through the whole worker.

    .venv/bin/python bench/ingest.py                          # 1,000,000 readings, 500 per message
    .venv/bin/python bench/ingest.py --readings 200000 --per-message 1   # one reading per message

It creates (and afterwards drops) a scratch database ``<db>_bench_ingest``
on the server of ``DATABASE_URL``, a city with ``--sensors`` registered
sensors, and uses the broker at ``MQTT_URL`` under a topic root of its own.

* **workers** — the measured path: every message is queued on the broker for
  the workers' persistent sessions first (QoS 1), then ``twin run-ingest
  --workers N`` (paho MQTT 5, manual acks, strict JSON, pydantic validation,
  device lookup, batched COPY through ``record_observations``, ``last_seen``
  update, acks after commit) drains the backlog; timed from the moment the
  last worker is online to the last committed row.
* **peer: storage only** — the same rows handed to ``record_observations``
  in batches of the worker's size, from Python objects built before the
  timer: the ceiling the worker's storage step cannot beat.

Target: the worker commits at least 50,000 readings/s with batched payloads.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET = 50_000
CENTER = (107.5905, 16.4637)
SCRATCH_SUFFIX = "_bench_ingest"


def _database_url() -> str:
    """DATABASE_URL as twin/settings.py would read it, without importing the settings.

    Importing them first would freeze the URL before it is pointed at the
    scratch database, and the benchmark would write into the real one.
    """
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    run_env = Path(__file__).resolve().parent.parent / ".run" / "env"
    if run_env.is_file():
        for line in run_env.read_text().splitlines():
            line = line.strip().removeprefix("export ").strip()
            if line.startswith("DATABASE_URL="):
                return line.partition("=")[2].strip().strip("'\"")
    return "postgres://postgres@127.0.0.1:5432/citytwin"


def _admin(cfg: dict):
    import psycopg

    return psycopg.connect(host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"],
                           password=cfg["PASSWORD"] or None, dbname="postgres", autocommit=True)


def _setup_scratch_database() -> str:
    """Create ``<db>_bench_ingest``, point Django at it (checked), migrate it."""
    import dj_database_url

    if "twin.settings" in sys.modules:
        raise SystemExit("settings imported too early: refusing to risk the real database")
    url = _database_url()
    cfg = dj_database_url.parse(url)
    scratch = f"{cfg['NAME']}{SCRATCH_SUFFIX}"
    with _admin(cfg) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        admin.execute(f'CREATE DATABASE "{scratch}" TEMPLATE template1')
    os.environ["DATABASE_URL"] = f"{url.rsplit('/', 1)[0]}/{scratch}"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.settings_dict["NAME"] != scratch:
        raise SystemExit(f"Django points at {connection.settings_dict['NAME']}, not {scratch}: stopping")
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    call_command("migrate", verbosity=0)
    return scratch


def _drop_scratch_database(name: str) -> None:
    import dj_database_url
    from django.db import connections

    connections.close_all()
    if not name.endswith(SCRATCH_SUFFIX):
        raise SystemExit(f"refusing to drop {name}")
    with _admin(dj_database_url.parse(os.environ["DATABASE_URL"])) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _reset(table: str) -> None:
    from django.db import connection

    if not connection.settings_dict["NAME"].endswith(SCRATCH_SUFFIX):
        raise SystemExit("not on the scratch database: refusing to truncate")
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table}")
        cursor.execute("CHECKPOINT")


def _city_and_sensors(n: int) -> dict[str, int]:
    """A city with an extent and ``n`` sensors; returns external id → feature id."""
    from django.contrib.gis.geos import Point, Polygon
    from shapely.geometry import Point as ShapelyPoint

    from twin.models import City, Feature
    from twin.services import FeatureRow, LayerSpec, ensure_layer, write_features

    extent = Polygon.from_bbox((107.4, 16.3, 107.8, 16.7))
    extent.srid = 4326
    city, _ = City.objects.update_or_create(slug="benchcity", defaults={
        "name_vi": "Thành phố thử", "extent": extent, "center": Point(*CENTER, srid=4326)})
    layer = ensure_layer(LayerSpec(slug="bench-ingest-sensors", title_vi="Cảm biến", kind="sensor",
                                   geometry_type="Point"), city=city)
    rows = [FeatureRow(external_id=f"s{i}", geom=ShapelyPoint(CENTER[0] + (i % 100) * 1e-4,
                                                             CENTER[1] + (i // 100) * 1e-4),
                       properties={"sensor_type": "air_quality", "unit": "µg/m³"}) for i in range(n)]
    write_features(layer, rows)
    return dict(Feature.objects.filter(layer=layer).values_list("external_id", "id"))


def _payloads(readings: int, per_message: int, sensors: int, start: datetime):
    """(device id, JSON bytes) for every message: each sensor gets consecutive seconds."""
    per_sensor: dict[int, int] = {}
    message = 0
    produced = 0
    while produced < readings:
        sensor = message % sensors
        count = min(per_message, readings - produced)
        base = per_sensor.get(sensor, 0)
        items = [{"dateObserved": (start + timedelta(seconds=base + k)).isoformat(),
                  "pm25": round(5 + (base + k) % 90 * 0.5, 1), "pm10": 20.0 + (base + k) % 50}
                 for k in range(count)]
        per_sensor[sensor] = base + count
        yield f"s{sensor}", json.dumps(items if per_message > 1 else items[0]).encode()
        produced += count
        message += 1


def _config_file(workdir: Path, root: str, name: str) -> Path:
    path = workdir / "ingest.toml"
    path.write_text(f'[topics]\nroot = "{root}"\n[worker]\nname = "{name}"\nshared_group = "{name}"\n')
    return path


def _workers(config: Path, workers: int, rules: bool = True) -> subprocess.Popen:
    """``twin run-ingest --workers N`` on the scratch database (the real command, real processes)."""
    profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
    return subprocess.Popen([sys.executable, *profile, "-m", "twin.cli", "run-ingest", "--config", str(config),
                             "--workers", str(workers), *([] if rules else ["--no-rules"])],
                            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_online(cfg, names: list[str], timeout: float = 60) -> float:
    """Wait until every worker has published its retained ``online``; returns when the last did."""
    import paho.mqtt.client as mqtt

    online: dict[str, float] = {}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)

    def on_message(c, u, message):
        if message.payload == b"online":
            online[message.topic.split("/")[-2]] = time.perf_counter()

    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{cfg.topics.root}/all/ingest/+/available", qos=1)
    client.connect(*cfg.broker.endpoint()[:2])
    client.loop_start()
    deadline = time.perf_counter() + timeout
    while not all(name in online for name in names):
        if time.perf_counter() > deadline:
            raise SystemExit(f"workers not online after {timeout:.0f} s: {sorted(set(names) - set(online))}")
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    return max(online.values())


def _names(base: str, workers: int) -> list[str]:
    """Worker names as ``twin run-ingest`` gives them: the name itself, or NAME-0 … NAME-{N-1}."""
    return [base] if workers == 1 else [f"{base}-{i}" for i in range(workers)]


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(60)


def _queue_backlog(cfg, config: Path, workers: int, readings: int, per_message: int, sensors: int,
                   start: datetime) -> int:
    """Create the workers' sessions, stop them, then publish everything while they are away."""
    import paho.mqtt.client as mqtt

    names = _names(cfg.worker.name, workers)
    process = _workers(config, workers)
    _wait_online(cfg, names)
    _stop(process)
    host, port = cfg.broker.endpoint()[:2]
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}",
                      protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(1000)
    pub.connect(host, port)
    pub.loop_start()
    messages = 0
    pending = []
    for device, payload in _payloads(readings, per_message, sensors, start):
        pending.append(pub.publish(f"{cfg.topics.root}/benchcity/sensor/{device}/air", payload, qos=1))
        messages += 1
        if len(pending) >= 20_000:  # paho refuses QoS 1 publishes past 65,535 unacknowledged
            for info in pending:
                info.wait_for_publish(60)
            pending = []
    for info in pending:
        info.wait_for_publish(60)
    pub.disconnect()
    pub.loop_stop()
    return messages


def _stored() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM twin_observation")
        return cursor.fetchone()[0]


def _ids_used() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
                       "FROM twin_observation_id_seq")
        return cursor.fetchone()[0]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _drain(cfg, config: Path, workers: int, readings: int, rules: bool) -> tuple[float, int, float]:
    """Start the workers on the queued backlog; time from the last one online to the last row.

    Also returns the workers' CPU seconds (user + system, start-up included):
    on a shared machine wall time varies with the neighbours, CPU per
    reading much less.
    """
    cpu_before = _children_cpu()
    process = _workers(config, workers, rules)
    try:
        started = _wait_online(cfg, _names(cfg.worker.name, workers))
        deadline = time.perf_counter() + 1800
        # Progress from the id sequence (O(1)); count(*) every few ms would
        # itself load the database being measured. Verified by count below.
        while (ids := _ids_used()) < readings:
            if time.perf_counter() > deadline:
                raise SystemExit(f"only {ids} of {readings} readings after 30 min")
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        _stop(process)
    return elapsed, _stored(), _children_cpu() - cpu_before


def _storage_only(ids: dict[str, int], readings: int, per_message: int, sensors: int, start: datetime,
                  batch: int) -> tuple[float, float]:
    from twin.services import ObservationRow, record_observations

    rows = []
    for device, payload in _payloads(readings, per_message, sensors, start):
        items = json.loads(payload)
        for item in items if isinstance(items, list) else [items]:
            rows.append(ObservationRow(ids[device], datetime.fromisoformat(item["dateObserved"]),
                                       {"pm25": item["pm25"], "pm10": item["pm10"]}))
    _reset("twin_observation")
    started, cpu = time.perf_counter(), time.process_time()
    for offset in range(0, len(rows), batch):
        record_observations(rows[offset:offset + batch])
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--per-message", type=int, default=500, help="readings per MQTT message (1 = unbatched)")
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="twin run-ingest --workers N")
    parser.add_argument("--no-rules", action="store_true", help="run the workers with --no-rules")
    args = parser.parse_args()
    bench_db = _setup_scratch_database()
    try:
        from ingestion.config import load_config

        ids = _city_and_sensors(args.sensors)
        start = (datetime.now(timezone.utc) - timedelta(days=6)).replace(microsecond=0)
        name = f"bench-{uuid.uuid4().hex[:8]}"
        root = f"bench{uuid.uuid4().hex[:8]}/city"
        with tempfile.TemporaryDirectory() as workdir:
            config = _config_file(Path(workdir), root, name)
            cfg = load_config(config)
            _reset("twin_observation")
            messages = _queue_backlog(cfg, config, args.workers, args.readings, args.per_message, args.sensors,
                                      start)
            elapsed, stored, worker_cpu = _drain(cfg, config, args.workers, args.readings, not args.no_rules)
            _retire(config, _names(name, args.workers))
        peer, peer_cpu = _storage_only(ids, args.readings, args.per_message, args.sensors, start,
                                       cfg.batch.max_readings)
    finally:
        _drop_scratch_database(bench_db)
    rate, peer_rate = args.readings / elapsed, args.readings / peer
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (a shared machine slows both figures)")
    print(f"{args.readings:,} readings in {messages:,} messages ({args.per_message} per message), "
          f"{args.sensors:,} sensors, {args.workers} worker process(es){' without rules' if args.no_rules else ''}; "
          f"{stored:,} rows stored")
    print(f"workers (MQTT → validate → COPY → ack): {rate:>10,.0f} readings/s  ({elapsed:.1f} s); "
          f"worker CPU {worker_cpu / args.readings * 1e6:.1f} µs/reading")
    print(f"peer: record_observations only        : {peer_rate:>10,.0f} readings/s  ({peer:.1f} s); "
          f"client CPU {peer_cpu / args.readings * 1e6:.1f} µs/reading")
    verdict = "PASS" if rate >= TARGET else "FAIL"
    print(f"workers / storage-only: {rate / peer_rate:.0%};  target ≥ {TARGET:,} readings/s: "
          f"{verdict if args.per_message > 1 else 'n/a (unbatched)'}")
    if stored != args.readings:
        raise SystemExit(f"stored {stored} rows for {args.readings} readings")


def _retire(config: Path, names: list[str]) -> None:
    """End the workers' broker sessions (they would otherwise stay queued for a week)."""
    for name in names:
        subprocess.run([sys.executable, "-m", "twin.cli", "run-ingest", "--config", str(config), "--worker-name", name,
                        "--retire"], env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120, check=False)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twin.settings")
    main()
