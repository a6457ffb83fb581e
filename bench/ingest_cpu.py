# SPDX-License-Identifier: AGPL-3.0-or-later
"""Worker CPU per message, our code only, with no broker and no neighbours' noise.

    .venv/bin/python bench/ingest_cpu.py                   # 20,000 messages, batches of 100
    .venv/bin/python bench/ingest_cpu.py --messages 50000 --batch 500 --profile /tmp/ingest.prof

``bench/ingest.py`` judges the full path against the raw MQTT rate; on a shared
2-core machine its rates swing with the neighbours' load. This one isolates
what the worker's own code costs per message, the figure that decides how far a
worker process can go: the simulator's fleet renders real messages (the same
topics and payloads it publishes), they are handed to the MQTT adapter's
``on_message`` as paho's ``MQTTMessage`` objects (paho's own packet decoding
is not included: it is the same for any consumer), and the sink stores them in
batches of ``--batch`` in a scratch database with the city's rules on, exactly
as ``twin run-ingest`` does. CPU time (``time.process_time``: this process,
all threads) is reported per message for the two halves: parse (network
thread) and resolve + commit + acks + rules (sink thread); the database
server's own CPU is not counted.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_support import drop_scratch_database, machine, setup_scratch_database  # noqa: E402
from twin.gc_pauses import collect_at_boundary  # noqa: E402


class _Clock:
    def __init__(self) -> None:
        self.parse = self.sink = 0.0


def _messages(cfg, count: int, readings: int = 1) -> list[tuple[str, bytes]]:
    """``count`` messages of ``readings`` readings from the fleet, round-robin over its devices, times advancing."""
    from ingestion.simulator.fleet import fleet_devices
    from ingestion.simulator.plan import make_behaviours
    from ingestion.simulator.streams import build_device

    behaviours = make_behaviours(cfg)
    devices = [build_device(spec, behaviours) for spec in fleet_devices(cfg)]
    start = time.time() - count * readings / 1000
    out = []
    for n in range(count):
        topic, payload, _ = devices[n % len(devices)].message(start + n * readings / 1000, readings)
        out.append((topic, payload if isinstance(payload, bytes) else payload.encode()))
    return out


def _worker(cfg_root: str):
    from ingestion.config import IngestConfig
    from ingestion.worker import IngestWorker

    cfg = IngestConfig.model_validate({"topics": {"root": cfg_root}, "worker": {"name": "cpu-bench"},
                                       "broker": {"url": "mqtt://127.0.0.1:1"}})
    return IngestWorker(cfg)


def run(messages: list[tuple[str, bytes]], worker, batch: int, clock: _Clock) -> int:
    """Feed ``messages`` through the adapter and flush every ``batch``; returns rows committed."""
    import paho.mqtt.client as mqtt

    adapter, sink = worker.adapter, worker.sink
    committed = 0
    for start in range(0, len(messages), batch):
        chunk = messages[start:start + batch]
        packets = []
        for mid, (topic, payload) in enumerate(chunk, 1):
            message = mqtt.MQTTMessage(mid=mid, topic=topic.encode())
            message.payload, message.qos = payload, 1
            packets.append(message)
        t0 = time.process_time()
        for message in packets:
            adapter._on_message(None, None, message)
        t1 = time.process_time()
        sink._collect(0)
        report = sink._flush_until_done(worker._stop)
        collect_at_boundary()               # as the sink's loop does after each batch
        clock.parse += t1 - t0
        clock.sink += time.process_time() - t1
        committed += report.inserted if report else 0
    return committed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100, help="messages per committed batch")
    parser.add_argument("--readings", type=int, default=1, help="readings per message (gateways batch them)")
    parser.add_argument("--warmup", type=int, default=2_000, help="messages run first, not counted")
    parser.add_argument("--profile", help="write a cProfile of the measured run here")
    parser.add_argument("--gc-threshold", type=int, default=20_000,
                        help="the worker's gc tuning (worker.gc_threshold; 0: Python's defaults, for A/B)")
    parser.add_argument("--cycles", action="store_true",
                        help="also list what only the cyclic garbage collector freed (reference cycles per message)")
    return parser.parse_args()


def cycle_garbage_report(top: int = 15) -> str:
    """What the cyclic collector freed since ``gc.set_debug(gc.DEBUG_SAVEALL)``: object counts by type.

    Why: reference counting frees a worker's per-message objects at once; what
    sits in a cycle waits for the collector, whose pauses stop the worker (a
    fire alarm behind it) — each cycle found here is a latency tail.
    """
    import collections
    import gc

    gc.collect()
    kinds = collections.Counter(type(o).__module__ + "." + type(o).__qualname__ for o in gc.garbage)
    lines = [f"objects in reference cycles: {len(gc.garbage):,}", "| type | objects |", "|---|---:|"]
    lines += [f"| {kind} | {n:,} |" for kind, n in kinds.most_common(top)]
    gc.set_debug(0)
    gc.garbage.clear()
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twin.settings")
    print(f"# bench/ingest_cpu.py — {machine()}", flush=True)
    scratch = setup_scratch_database()
    try:
        from bench.ingest import bench_fleet
        from ingestion.simulator.fleet import register_fleet

        cfg = bench_fleet(alarm_rate_per_h=0, start_alarmed=0)
        register_fleet(cfg)
        messages = _messages(cfg, args.warmup + args.messages, args.readings)
        worker = _worker(cfg.topic_root)
        worker.adapter._ack = lambda *a: None        # no broker connection to acknowledge on
        run(messages[:args.warmup], worker, args.batch, _Clock())
        from ingestion.worker import tune_gc

        tune_gc(args.gc_threshold)          # as `twin run-ingest` does before its worker runs
        clock = _Clock()
        profiler = cProfile.Profile(time.process_time) if args.profile else None   # CPU, not waits
        if profiler:
            profiler.enable()
        if args.cycles:
            import gc

            gc.set_debug(gc.DEBUG_SAVEALL)
        rows = run(messages[args.warmup:], worker, args.batch, clock)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        n = args.messages
        print(f"\n{n:,} messages of {args.readings} reading(s) in batches of {args.batch}, {rows:,} rows committed")
        if args.readings > 1:
            print(f"CPU per reading: {1e6 * (clock.parse + clock.sink) / (n * args.readings):.1f} µs")
        print("| part | CPU µs/message |\n|---|---:|")
        print(f"| parse (adapter `on_message`) | {1e6 * clock.parse / n:.1f} |")
        print(f"| sink: resolve, commit, acks, rules | {1e6 * clock.sink / n:.1f} |")
        print(f"| **total (our code)** | **{1e6 * (clock.parse + clock.sink) / n:.1f}** |")
        if args.cycles:
            print(cycle_garbage_report())
    finally:
        drop_scratch_database(scratch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
