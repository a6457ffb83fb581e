# SPDX-License-Identifier: AGPL-3.0-or-later
"""Ingestion benchmark (issue 5), in one run: raw limits first, then the full path, then latency.

    .venv/bin/python bench/ingest.py                  # ~25 min: 60 s per full-path phase
    .venv/bin/python bench/ingest.py --duration 20 --latency-duration 20 --workers 1 --no-diagnose   # quick look

By hand, not in CI. Everything runs on 127.0.0.1: a **throwaway Mosquitto**
on a free port (tuned: long queues, 100 in flight; never the shared
broker) and a scratch database ``<db>_bench_ingest`` on the server of
``DATABASE_URL`` (or ``.run/env``), migrated and loaded with Huế, dropped at
the end. In order:

1. raw paho → Mosquitto → paho at QoS 0 and QoS 1 (no storage); the
   simulator's own publisher flat out; raw ``COPY`` into ``twin_observation``;
2. the full path — simulator (single-reading messages, QoS 1, flat out) →
   Mosquitto → ``twin run-ingest --workers N`` (parse, validate, devices,
   COPY, rules, acks) → committed in PostGIS — for ``--duration`` seconds per
   worker count; goal: ≥ 60 % of the raw QoS 1 rate of this run;
3. the same with batched payloads (``--batch`` readings per message, as
   gateways send); goal: ≥ 50,000 readings/s committed;
4. latency of a fire alarm → event on a ``/ws/live`` client under a
   ``--background-rate`` msg/s stream; goal: p99 ≤ 200 ms.

Prints markdown tables with ratios and PASS/FAIL; exit status 1 if a goal is missed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_support import (Broker, drop_scratch_database, machine, setup_scratch_database,  # noqa: E402
                                  stored_rows)

PATH_GOAL = 0.60
BATCHED_GOAL = 50_000
P99_GOAL_MS = 200.0
FLEET = {"air": 200, "water": 20, "fire": 280}


def bench_fleet(topic_root: str = "bench/city", **fire):
    """The shipped Huế fleet, scaled up: 500 devices, the same behaviours."""
    from django.conf import settings

    from ingestion.simulator.config import parse_fleet

    path = Path(settings.CITY_FIXTURES_DIR) / "hue" / "simulator.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    for name, count in FLEET.items():
        data[name]["count"] = count
    data["fire"].update(fire)
    data["topic_root"] = topic_root
    return parse_fleet(data, base_dir=path.parent, source=str(path))


def open_air_alerts(layer, every: int = 3) -> int:
    """Give every air station three past hours of hourly means, one in ``every`` of them polluted.

    The rules' steady state in a city with poor air: about a third of the
    stations with an open air-quality event, as after the first clock hour of
    a run (24 Nov 17:00: 75 events opened mid-run and, with every batch
    rewriting them, the batched rate fell from 38.7k to 12.4k readings/s).
    Without this, a run's figures depended on whether it crossed an hour.
    Evaluated in this process through the rule engine (the same rules the
    workers load), into the scratch database. Returns the events opened.
    """
    from datetime import timedelta

    from django.utils import timezone as dj_timezone

    from ingestion.messages import Reading
    from ingestion.rules.engine import evaluate
    from twin.models import Feature, GeoEvent

    from django.test.utils import override_settings

    hour = dj_timezone.now().replace(minute=0, second=0, microsecond=0)
    stations = list(Feature.objects.filter(layer=layer).order_by("external_id").values_list("id", "external_id"))
    with override_settings(LIVE_ANNOUNCER=""):     # nothing to announce, and never on the project's broker
        for back in (3, 2, 1):
            moment = hour - timedelta(hours=back) + timedelta(minutes=30)
            evaluate([Reading(feature_id=fid, device_id=ext, kind=layer.kind, stream="air", time=moment,
                              values={"pm25": 85.0 if n % every == 0 else 12.0}, city=layer.city.slug)
                      for n, (fid, ext) in enumerate(stations)])
    return GeoEvent.objects.filter(kind="air_quality").exclude(status="resolved").count()


def _raw(args, broker: Broker, cfg, feature_ids: list[int]) -> dict:
    from bench.ingest_raw import measure_copy, measure_raw, measure_simulator
    from ingestion.simulator.fleet import fleet_devices
    from ingestion.simulator.plan import make_plan

    best = {}
    for qos in (0, 1):   # the best of --raw-repeat runs: the peer must not look slower than it is
        runs = [measure_raw("127.0.0.1", broker.port, qos, args.raw_seconds) for _ in range(args.raw_repeat)]
        best[qos] = max(runs, key=lambda t: t.rate)
    out = {"raw0": best[0], "raw1": best[1], "sim": []}
    for qos, processes in ((0, 1), (0, 2), (0, 3), (1, 1), (1, 2)):
        root = f"simraw{qos}{processes}/city"
        sim_cfg = cfg.model_copy(update={"topic_root": root})
        plan = make_plan(sim_cfg, fleet_devices(sim_cfg), broker.url, rate=0, qos=qos, duration=args.raw_seconds)
        out["sim"].append(measure_simulator(plan, root, processes))
    out["copy"] = measure_copy(feature_ids, args.copy_rows)
    return out


def _rules_without(workdir: Path, rule: str) -> Path:
    """The city's rules.toml with one rule switched off (diagnosis: what does that rule cost?)."""
    from django.conf import settings

    text = (Path(settings.CITY_FIXTURES_DIR) / "hue" / "rules.toml").read_text(encoding="utf-8")
    header = f"[rules.{rule}]\n"
    if header not in text:
        text += f"\n{header}"
    path = workdir / f"rules-without-{rule}.toml"
    path.write_text(text.replace(header, header + "enabled = false\n"), encoding="utf-8")
    return path


def _paths(args, broker: Broker, cfg, workdir: Path, raw1: float) -> list:
    """Single-reading phases offered at the raw QoS 1 rate of this run, then batched ones, then diagnosis."""
    from bench.ingest_path import run_path
    from ingestion.simulator.plan import make_plan

    results = []
    common = {"max_drain": args.max_drain}
    single = make_plan(cfg, [], broker.url, rate=round(raw1) if raw1 else 0, qos=1, duration=args.duration)
    for workers in [] if args.only_batched else args.workers:
        results.append(run_path(single, cfg, broker.url, workdir, workers=workers, **common,
                                label=f"1 reading/message, {workers} worker(s)"))
    batched = make_plan(cfg, [], broker.url, rate=args.batched_rate, batch=args.batch, qos=1, duration=args.duration)
    for workers in args.workers:
        results.append(run_path(batched, cfg, broker.url, workdir, workers=workers, **common,
                                label=f"{args.batch} readings/message, {workers} worker(s)"))
    if args.diagnose and not args.only_batched:
        env = {"RULES_CONFIG": str(_rules_without(workdir, "air_quality"))}
        workers = max(args.workers)
        for plan, what in ((single, "1 reading"), (batched, f"{args.batch} readings")):
            results.append(run_path(plan, cfg, broker.url, workdir, workers=workers, worker_env=env, **common,
                                    label=f"diagnosis: {what}/message, {workers} worker(s), air_quality rule off"))
    return results


def _latency(args, broker: Broker, workdir: Path) -> list:
    """The judged run at ``--background-rate``, then (diagnosis) one at a rate the path sustains easily."""
    from bench.ingest_live import PROBE_PANELS, run_latency
    from ingestion.simulator.plan import make_plan
    from twin.models import Feature

    cfg = bench_fleet(alarm_rate_per_h=0, start_alarmed=0)
    ids = [f"{cfg.fire.id_prefix}-{n:04d}" for n in range(FLEET["fire"] - PROBE_PANELS + 1, FLEET["fire"] + 1)]
    panels = list(Feature.objects.filter(layer__slug=cfg.fire.layer.slug, external_id__in=ids)
                  .order_by("external_id").values_list("id", "external_id"))
    judged = {"flush_interval_ms": args.latency_flush_ms} if args.latency_flush_ms else None
    runs = [(args.background_rate, args.latency_duration, judged)]
    if args.diagnose:
        quiet = min(args.latency_duration, 30)
        runs += [(args.quiet_rate, quiet, None)]
    results = []
    for rate, duration, batch in runs:
        plan = make_plan(cfg, [], broker.url, rate=rate, qos=1, duration=duration)
        results.append(run_latency(plan, cfg, broker.url, workdir, probe_panels=panels, duration=duration,
                                   workers=args.latency_workers, worker_batch=batch))
    return results


def qos1_reference(raw: dict) -> float:
    """The QoS 1 pub→sub rate the full path is judged against: the best seen in this run.

    The bare paho loop and the simulator's publisher (same paho settings)
    both measure MQTT alone; on a shared machine either can come out
    ahead, so the higher one is the reference (the harder goal).
    """
    rates = [raw["raw1"].rate] + [t.rate for t, _ in raw["sim"] if t.what.endswith("QoS 1")]
    return max(rates)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report_raw(raw: dict) -> list[str]:
    lines = ["### Raw limits (same run)", "", "| what | sent | received | rate /s | lost |", "|---|---:|---:|---:|---:|"]
    for t in (raw["raw0"], raw["raw1"]):
        lines.append(f"| {t.what} | {t.sent:,} | {t.received:,} | {t.rate:,.0f} msg | {t.lost:,} |")
    copy = raw["copy"]
    lines.append(f"| {copy.what} | {copy.sent:,} rows | — | {copy.rate:,.0f} rows | — |")
    lines += ["", "### Simulator publisher flat out (counting subscriber, no storage)", "",
              "| publisher | published msg/s | delivered msg/s | lost |", "|---|---:|---:|---:|"]
    for t, published in raw["sim"]:
        lines.append(f"| {t.what} | {published:,.0f} | {t.rate:,.0f} | {t.lost:,} |")
    return lines


def _evenly(samples: list[tuple[float, int]], count: int) -> list[tuple[float, int]]:
    """About ``count`` samples evenly spread in time (the drain samples far more often)."""
    if not samples:
        return []
    end = samples[-1][0]
    picked = [min(samples, key=lambda s: abs(s[0] - end * k / count)) for k in range(count + 1)]
    return sorted(set(picked))


def report_paths(paths: list, raw1: float) -> tuple[list[str], bool]:
    lines = ["### Full path: publish → validate → rules → committed in PostGIS", "",
             f"Reference for the ratio: {raw1:,.0f} msg/s, the best QoS 1 pub→sub rate of this run (no storage).", "",
             "| phase (QoS 1, `twin run-ingest`) | offered msg/s | published msg/s | readings published "
             "| committed rows/s (steady) | vs raw QoS 1 | goal | committed | left after drain wait | dead letters "
             "| worker CPU µs/message |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    ok = True
    for r in paths:
        if r.label.startswith("diagnosis"):
            ratio = r.steady_rate / raw1 if raw1 else 0.0
            passed, goal, versus = True, "not judged", f"{ratio:.0%}" if r.batch == 1 else "—"
        elif r.batch == 1:
            ratio = r.steady_rate / raw1 if raw1 else 0.0
            passed = ratio >= PATH_GOAL
            goal = f"{_verdict(passed)} (≥ {PATH_GOAL:.0%})"
            versus = f"{ratio:.0%}"
        else:
            passed = r.steady_rate >= BATCHED_GOAL
            goal = f"{_verdict(passed)} (≥ {BATCHED_GOAL:,}/s)"
            versus = "—"
        ok &= passed
        offered = f"{r.offered_rate:,.0f}" if r.offered_rate else "flat out"
        lines.append(f"| {r.label} | {offered} | {r.published_rate:,.0f} | {r.readings:,} | {r.steady_rate:,.0f} | "
                     f"{versus} | {goal} | {r.committed:,} | {r.backlog:,} ({r.drain_s:.0f} s) | {r.dead_letters} "
                     f"| {r.cpu_us_per_message:,.0f} |")
    lines += ["", "Rows over time (s since the first publish: rows committed):", ""]
    for r in paths:
        lines.append(f"- {r.label}: " + ", ".join(f"{t:.0f}: {rows:,}" for t, rows in _evenly(r.samples, 12)))
    return lines, ok


def report_latency(runs: list) -> tuple[list[str], bool]:
    lines = ["### Latency: fire alarm published → event on a /ws/live client", "",
             "| background | workers, flush interval | committed / published when probes ended | probes (no event) "
             "| measured to | p50 ms | p90 ms | p99 ms | max ms | goal |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---|"]
    passed = False
    for n, lat in enumerate(runs):
        judged = n == 0
        ok = lat.missing == 0 and lat.p(99) <= P99_GOAL_MS
        passed = ok if judged else passed
        goal = f"{_verdict(ok)} (p99 ≤ {P99_GOAL_MS:.0f} ms)" if judged else "diagnosis, not judged"
        head = (f"| {lat.background_rate:,.0f} msg/s | {lat.workers}, {lat.flush_ms} ms | {lat.stored_at_end:,} / "
                f"{lat.background_readings:,} | {lat.probes} ({lat.missing}) ")
        for label, which, verdict in (("WebSocket client", "to_client_ms", goal),
                                      ("WebSocket client (alarms only; resets are the rest)", "to_client_alarms_ms", "—"),
                                      ("event row written (alarms)", "to_commit_ms", "—"),
                                      ("live message built by the worker (alarms)", "to_announce_ms", "—")):
            values = getattr(lat, which)
            lines.append(f"{head}| {label} | {lat.p(50, which):.0f} | {lat.p(90, which):.0f} | "
                         f"{lat.p(99, which):.0f} | {max(values, default=float('nan')):.0f} | {verdict} |")
    for lat in runs:
        slow = sorted(range(len(lat.to_client_ms)), key=lambda i: -lat.to_client_ms[i])[:8]
        lines.append(f"\nslowest probes at {lat.background_rate:,.0f} msg/s (ms @ probe number): "
                     + ", ".join(f"{lat.to_client_ms[i]:.0f} @ {i}" for i in sorted(slow)))
        lines.append("PostgreSQL's own work during the probes (last run per table): " + "; ".join(lat.maintenance))
    return lines, passed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60, help="seconds of publishing per full-path phase")
    parser.add_argument("--raw-seconds", type=float, default=10, help="seconds of publishing per raw measurement")
    parser.add_argument("--raw-repeat", type=int, default=2, help="raw pub→sub runs per QoS; the best one counts")
    parser.add_argument("--copy-rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2],
                        help="worker counts to run, e.g. 1,2")
    parser.add_argument("--batch", type=int, default=100, help="readings per message in the batched phase")
    parser.add_argument("--batched-rate", type=float, default=1000, help="messages/s offered in the batched phase")
    parser.add_argument("--background-rate", type=float, default=1000, help="msg/s under the latency probes")
    parser.add_argument("--latency-duration", type=float, default=60)
    parser.add_argument("--latency-workers", type=int, default=2, help="twin run-ingest workers in the latency phase")
    parser.add_argument("--quiet-rate", type=float, default=100,
                        help="background msg/s of the diagnosis latency run (a load the path sustains)")
    parser.add_argument("--max-drain", type=float, default=120,
                        help="seconds to wait for a phase's backlog after publishing stops")
    parser.add_argument("--no-diagnose", dest="diagnose", action="store_false",
                        help="skip the diagnosis phases (air-quality rule off; latency under a light load)")
    parser.add_argument("--latency-flush-ms", type=int, help="the workers' batch.flush_interval_ms in the judged "
                        "latency run (default: the product's default)")
    parser.add_argument("--no-air-alerts", dest="air_alerts", action="store_false",
                        help="start without open air-quality events (default: a third of the stations in alert, "
                             "see open_air_alerts)")
    parser.add_argument("--only-batched", action="store_true", help="path: run only the batched phases")
    parser.add_argument("--log-dir", help="keep the workers' and the server's logs here (default: a temp dir)")
    parser.add_argument("--skip", action="append", default=[], choices=["raw", "path", "latency"])
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twin.settings")
    started = time.time()
    print(f"# bench/ingest.py — {machine()}", flush=True)
    scratch = setup_scratch_database()
    broker = Broker().start()
    print(f"scratch database {scratch}; throwaway broker {broker.version()} at {broker.url}", flush=True)
    lines: list[str] = []
    ok = True
    try:
        from ingestion.simulator.fleet import register_fleet

        cfg = bench_fleet()
        fleet = register_fleet(cfg)
        from twin.models import Feature

        ids = list(Feature.objects.filter(layer__in=fleet.layers.values()).values_list("id", flat=True))
        if args.air_alerts:
            opened = open_air_alerts(fleet.layers["air"])
            print(f"air-quality events open before the phases: {opened} of {FLEET['air']} stations", flush=True)
        with tempfile.TemporaryDirectory(prefix="ct-bench-") as tmp:
            workdir = Path(args.log_dir or tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            raw = _raw(args, broker, cfg, ids) if "raw" not in args.skip else None
            if raw:
                lines += report_raw(raw)
                print("\n".join(lines), flush=True)
            if "path" not in args.skip:
                raw1 = qos1_reference(raw) if raw else 0.0
                more, passed = report_paths(_paths(args, broker, cfg, workdir, raw1), raw1)
                lines += [""] + more
                ok &= passed
                print("\n".join(more), flush=True)
            if "latency" not in args.skip:
                more, passed = report_latency(_latency(args, broker, workdir))
                lines += [""] + more
                ok &= passed
                print("\n".join(more), flush=True)
        print(f"\nrows left in the scratch table: {stored_rows():,}; total {time.time() - started:.0f} s")
    finally:
        broker.stop()
        if not args.keep:
            drop_scratch_database(scratch)
    print("\n" + "\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
