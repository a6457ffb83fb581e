# SPDX-License-Identifier: AGPL-3.0-or-later
"""The full ingestion path under load: simulator → Mosquitto → ``twin run-ingest`` → PostGIS.

Every phase uses a topic root of its own (a previous phase's persistent
sessions would otherwise keep queueing copies of the new traffic), empties
the observation table, starts the real ``twin run-ingest --workers N``
processes, and runs the simulator's publisher in a process of its own at the
offered rate for the phase's duration, following the committed rows every few
seconds from PostgreSQL's statistics (``inserted_rows``: a ``count(*)`` at
millions of rows would load the machine under test). After the publisher stops
it waits for the backlog to drain, so "committed" is the exact ``count(*)`` at
the end.
"""
from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.ingest_support import Workers, inserted_rows, reset_observations, stored_rows

SAMPLE_S = 5.0
WARMUP_S = 5.0
DRAIN_IDLE_S = 30.0
MAX_DRAIN_S = 120.0


@dataclass
class PathResult:
    """One phase: what was offered, what was committed, and when."""

    label: str
    workers: int
    batch: int
    offered_rate: float                 # messages/s asked of the publisher (0 = flat out)
    messages: int = 0
    readings: int = 0
    publish_s: float = 0.0
    committed: int = 0
    steady_rate: float = 0.0            # committed rows/s between WARMUP_S and the publisher's end
    drain_s: float = 0.0                # after the publisher stopped, until the last row
    backlog: int = 0                    # readings still not stored when the drain wait ended
    dead_letters: int = 0
    worker_cpu_s: float = 0.0           # CPU of the run-ingest processes from the first publish to the drain's end
    samples: list[tuple[float, int]] = field(default_factory=list)   # (s since the first publish, rows)

    @property
    def published_rate(self) -> float:
        return self.messages / self.publish_s if self.publish_s else 0.0

    @property
    def cpu_us_per_message(self) -> float:
        """Worker CPU per committed message (all threads): independent of the neighbours' load."""
        messages = self.committed / max(self.batch, 1)
        return self.worker_cpu_s / messages * 1e6 if messages else 0.0

    @property
    def overall_rate(self) -> float:
        """Rows committed per second from the first publish to the last commit."""
        total = self.publish_s + self.drain_s
        return self.committed / total if total else 0.0


def _publisher(plan, results) -> None:
    from ingestion.simulator.publisher import run_plan

    # perf_counter is CLOCK_MONOTONIC on Linux: comparable across processes.
    results.put(("started", time.perf_counter()))
    results.put(("done", run_plan(plan)))


class _Progress:
    """Rows committed since the phase began, from the statistics (cheap); the exact count is taken once, at the end."""

    def __init__(self) -> None:
        self.base = inserted_rows()

    def sample(self, samples: list[tuple[float, int]]) -> None:
        """(perf_counter at the query's midpoint, rows)."""
        began = time.perf_counter()
        rows = inserted_rows() - self.base
        samples.append(((began + time.perf_counter()) / 2, rows))


def _rows_at(samples: list[tuple[float, int]], moment: float) -> float:
    """Rows at ``moment`` (s since start), interpolated between samples."""
    before = max((s for s in samples if s[0] <= moment), default=samples[0])
    after = min((s for s in samples if s[0] >= moment), default=samples[-1])
    if after[0] == before[0]:
        return before[1]
    return before[1] + (after[1] - before[1]) * (moment - before[0]) / (after[0] - before[0])


def _steady(result: PathResult) -> float:
    start, end = WARMUP_S, result.publish_s
    if end - start < 1:
        start = 0.0
    return (_rows_at(result.samples, end) - _rows_at(result.samples, start)) / max(end - start, 1e-9)


def _drain(result: PathResult, samples: list[tuple[float, int]], started: float, max_drain: float,
           progress: _Progress) -> None:
    """Sample until every published reading is stored, nothing moved for ``DRAIN_IDLE_S``, or ``max_drain``.

    Then one exact ``count(*)``, the figure that is reported as committed.
    """
    last_change, last_rows = time.perf_counter(), -1
    give_up = time.perf_counter() + max_drain
    while True:
        progress.sample(samples)
        rows = samples[-1][1]
        if rows >= result.readings or time.perf_counter() > give_up:
            break
        if rows != last_rows:
            last_change, last_rows = time.perf_counter(), rows
        elif time.perf_counter() - last_change > DRAIN_IDLE_S:
            break
        time.sleep(2.0)
    drained_at = samples[-1][0] - started
    time.sleep(1.5)       # the statistics are up to a second behind the commits: let the last batch commit
    result.samples = [(t - started, rows) for t, rows in samples]
    result.drain_s = max(drained_at - result.publish_s, 0.0)   # not the final count's own seconds
    result.committed = stored_rows()
    result.backlog = max(result.readings - result.committed, 0)


def run_path(plan, cfg, broker_url: str, workdir: Path, *, workers: int, label: str,
             worker_env: dict | None = None, max_drain: float = MAX_DRAIN_S) -> PathResult:
    """One phase of the full path (see the module docstring); ``plan`` sets rate, batch, QoS, duration."""
    from ingestion.models import DeadLetter
    from ingestion.simulator.fleet import fleet_devices

    reset_observations()
    group = Workers(broker_url, workers, env_extra=worker_env or {}).start(workdir)
    devices = fleet_devices(cfg.model_copy(update={"topic_root": group.root}))
    plan = replace(plan, devices=tuple(devices), client_id=f"bench-sim-{group.name}")
    result = PathResult(label=label, workers=workers, batch=plan.batch, offered_rate=plan.rate)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    publisher = ctx.Process(target=_publisher, args=(plan, results))
    samples: list[tuple[float, int]] = []
    progress = _Progress()
    started = time.perf_counter()
    cpu_before = group.cpu_seconds()
    publisher.start()
    try:
        stats = None
        while stats is None:
            progress.sample(samples)
            try:
                kind, value = results.get(timeout=SAMPLE_S)
            except Exception:   # queue.Empty: keep sampling
                if not publisher.is_alive():
                    raise SystemExit("the benchmark publisher died") from None
                continue
            if kind == "started":
                started = value
            else:
                stats = value
        result.messages, result.readings, result.publish_s = stats.messages, stats.readings, stats.elapsed
        _drain(result, samples, started, max_drain, progress)
        result.worker_cpu_s = group.cpu_seconds() - cpu_before
        result.steady_rate = _steady(result)
        result.dead_letters = DeadLetter.objects.filter(topic__startswith=group.root + "/").count()
    finally:
        publisher.join(10)
        group.stop()
    return result


__all__ = ["PathResult", "run_path"]
