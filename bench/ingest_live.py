# SPDX-License-Identifier: AGPL-3.0-or-later
"""Latency: a fire alarm published on MQTT → its event on a ``/ws/live`` WebSocket client.

Set-up, all real processes on 127.0.0.1: one ``twin run-ingest`` worker,
daphne serving ``twin.asgi:application``, the simulator's publisher sending
the background stream (default 1,000 msg/s) in a process of its own, and
this process publishing probe alarms on ten dedicated fire panels (QoS 1) at
a low rate, alternating alarm and reset, while a ``LiveClient`` reads the
feed. A probe's latency is from just before ``publish()`` to the moment the
client read the matching event message (``created`` for an alarm,
``transition`` to resolved for a reset). The same probes are also timed to
the event's ``created_at`` in PostGIS and to the ``published_at`` of its live
message (when the worker built it, after the commit), which split the total
into "ingest and rules", "commit and announcement" and "push" (Mosquitto,
the hub in daphne, the socket). The client figure is also given for the
alarms alone: a reset's event is written twice (its clearing, then the
transition to resolved), so resets are the slower half.
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ingestion.config import BatchConfig
from bench.ingest_support import (ROOT, Workers, child_env, free_port, percentile, reset_observations, stop_process,
                                  stored_rows, wait_port)

PROBE_PANELS = 10


@dataclass
class LatencyResult:
    background_rate: float = 0.0       # messages/s the background publisher achieved
    workers: int = 1
    flush_ms: int = 20                 # the workers' batch.flush_interval_ms
    background_readings: int = 0       # what the background published …
    stored_at_end: int = 0             # … and what was committed when the probes ended
    to_client_ms: list[float] = field(default_factory=list)
    to_commit_ms: list[float] = field(default_factory=list)
    to_announce_ms: list[float] = field(default_factory=list)   # alarm → the worker built its live message
    to_client_alarms_ms: list[float] = field(default_factory=list)   # to_client_ms of the alarms (no resets)
    probes: int = 0
    missing: int = 0
    maintenance: list[str] = field(default_factory=list)   # PostgreSQL's own work during the probes

    def p(self, q: float, which: str = "to_client_ms") -> float:
        return percentile(getattr(self, which), q)


_AUTOVACUUM_SQL = """
SELECT relname, 'autovacuum', last_autovacuum FROM pg_stat_user_tables WHERE last_autovacuum >= %(since)s
UNION ALL
SELECT relname, 'autoanalyze', last_autoanalyze FROM pg_stat_user_tables WHERE last_autoanalyze >= %(since)s
ORDER BY 3
"""


def _checkpoints() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
        return cursor.fetchone()[0]


def database_maintenance(since: datetime, probe_rate: float, checkpoints_before: int) -> list[str]:
    """Autovacuum/autoanalyze runs since ``since`` by probe number (the last run per table), and checkpoints.

    Why: slow probes lined up with an autovacuum of ``twin_feature`` (24 Nov); this puts
    such coincidences in the bench's output instead of in a separate sampler.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_AUTOVACUUM_SQL, {"since": since})
        runs = cursor.fetchall()
    lines = [f"{what} {table} @ probe {(at - since).total_seconds() * probe_rate:.0f}" for table, what, at in runs]
    lines.append(f"checkpoints: {_checkpoints() - checkpoints_before}")
    return lines


def _token() -> str:
    """An operator's API token in the scratch database (events need READ_EVENTS)."""
    from twin.roles import Role
    from twin.services import create_api_token
    from twin.services.users import UserSpec, ensure_user

    user, _ = ensure_user(UserSpec(username=f"bench-live-{uuid.uuid4().hex[:6]}", roles=(Role.OPERATOR,)))
    return create_api_token(user, "bench live latency")[1]


class _Prober:
    """Publishes probe alarms/resets on dedicated panels and remembers each one."""

    def __init__(self, broker_url: str, root: str, panels: list[tuple[int, str]]) -> None:
        import paho.mqtt.client as mqtt

        self.panels = panels                       # (feature id, external id)
        self.root = root
        self.active = {fid: False for fid, _ in panels}
        self.probes: list[dict] = []               # kind, fid, issued (datetime), sent (time.time())
        host, port = broker_url.removeprefix("mqtt://").split(":")
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{uuid.uuid4().hex[:6]}",
                                  protocol=mqtt.MQTTv5)
        self.client.connect(host, int(port))
        self.client.loop_start()

    def _send(self, fid: int, external_id: str, alarm: bool, record: bool) -> None:
        issued = datetime.now(timezone.utc)
        payload = json.dumps({"type": "Alert", "dateIssued": issued.isoformat(), "category": "fire",
                              "severity": "critical", "alarm": alarm}).encode()
        sent = time.time()
        self.client.publish(f"{self.root}/hue/sensor/{external_id}/alert", payload, qos=1)
        if record:
            self.probes.append({"kind": "alarm" if alarm else "reset", "fid": fid, "issued": issued, "sent": sent})

    def reset_all(self) -> None:
        """A reset on every panel (unrecorded): no panel starts or ends a run in alarm."""
        for fid, external_id in self.panels:
            self._send(fid, external_id, False, record=False)
            self.active[fid] = False

    def probe(self, n: int) -> None:
        fid, external_id = self.panels[n % len(self.panels)]
        self.active[fid] = not self.active[fid]
        self._send(fid, external_id, self.active[fid], record=True)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def _read_feed(url: str, token: str, stop: threading.Event, seen: list, ready: threading.Event) -> None:
    """Keep every event message: (op, event id, source feature, status, occurred_at, received_at, published_at)."""
    from ingestion.live.client import LiveClient

    async with LiveClient(url, token=token) as live:
        await live.subscribe(events=True)
        ready.set()
        while not stop.is_set():
            try:
                message = await live.receive(timeout=0.5)
            except TimeoutError:
                continue
            if message.data.get("type") == "event":
                event = message.data["event"]
                seen.append((message.data["op"], event["id"], event.get("source_feature"), event.get("status"),
                             event.get("occurred_at"), message.received_at, message.data.get("published_at")))


def match_probes(probes: list[dict], seen: list) -> list[float | None]:
    """Latency (ms) of each probe, None when its event never arrived.

    An alarm matches the ``created`` message of its panel whose
    ``occurred_at`` is the alarm's ``dateIssued`` (the fire rule opens the
    event at the reading's time); a reset matches the ``transition`` to
    ``resolved`` of the event its panel's previous alarm opened.
    """
    created = {(fid, datetime.fromisoformat(at)): (eid, got) for op, eid, fid, _, at, got, _ in seen
               if op == "created" and at}
    resolved = {eid: got for op, eid, _, status, _, got, _ in seen if op == "transition" and status == "resolved"}
    open_event: dict[int, int] = {}
    out: list[float | None] = []
    for probe in probes:
        if probe["kind"] == "alarm":
            hit = created.get((probe["fid"], probe["issued"]))
            if hit is not None:
                open_event[probe["fid"]] = hit[0]
            out.append((hit[1] - probe["sent"]) * 1000 if hit else None)
        else:
            got = resolved.get(open_event.pop(probe["fid"], -1))
            out.append((got - probe["sent"]) * 1000 if got is not None else None)
    return out


def _server(broker_url: str, live_root: str, workdir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    log = (workdir / "daphne.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                "twin.asgi:application"], env=child_env(broker_url, LIVE_TOPIC_ROOT=live_root),
                               stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    wait_port(port, timeout=60, process=process)
    return process, port


def _background(plan, results) -> None:
    from ingestion.simulator.publisher import run_plan

    results.put(run_plan(plan))


def announce_latencies(probes: list[dict], seen: list) -> list[float]:
    """Probe alarm → the worker's ``published_at`` of its ``created`` message (ms): the part before MQTT and the hub.

    With the event row's time (:func:`_commit_latencies`) and the client's receipt, it splits a probe's
    latency into the worker's commit, its announcement, and the push through Mosquitto, daphne and the socket.
    """
    announced = {(fid, datetime.fromisoformat(at)): datetime.fromisoformat(published).timestamp()
                 for op, _, fid, _, at, _, published in seen if op == "created" and at and published}
    return [(announced[(p["fid"], p["issued"])] - p["sent"]) * 1000 for p in probes
            if p["kind"] == "alarm" and (p["fid"], p["issued"]) in announced]


def _commit_latencies(prober: _Prober) -> list[float]:
    """Probe alarm → the event row's ``created_at`` (written by the rules in the worker), matched exactly."""
    from twin.models import GeoEvent

    alarms = [p for p in prober.probes if p["kind"] == "alarm"]
    if not alarms:
        return []
    rows = (GeoEvent.objects.filter(source_feature_id__in={p["fid"] for p in alarms}, category="fire",
                                    occurred_at__gte=min(p["issued"] for p in alarms))
            .values_list("source_feature_id", "occurred_at", "created_at"))
    created = {(fid, at): made for fid, at, made in rows}
    return [(created[(p["fid"], p["issued"])].timestamp() - p["sent"]) * 1000 for p in alarms
            if (p["fid"], p["issued"]) in created]


def run_latency(plan, cfg, broker_url: str, workdir: Path, *, probe_panels: list[tuple[int, str]],
                duration: float, probe_rate: float = 4.0, workers: int = 1,
                worker_batch: dict | None = None) -> LatencyResult:
    """The latency phase (module docstring); ``plan`` is the background stream."""
    from dataclasses import replace

    from ingestion.simulator.fleet import fleet_devices

    reset_observations()
    live_root = f"live{uuid.uuid4().hex[:6]}"
    group = Workers(broker_url, workers, env_extra={"LIVE_TOPIC_ROOT": live_root}, batch=worker_batch or {})
    group.start(workdir)
    server, port = _server(broker_url, live_root, workdir)
    token = _token()
    devices = fleet_devices(cfg.model_copy(update={"topic_root": group.root}))
    plan = replace(plan, devices=tuple(devices), duration=duration + 5, client_id=f"bench-bg-{group.name}")
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    background = ctx.Process(target=_background, args=(plan, results))
    stop, ready, seen = threading.Event(), threading.Event(), []
    reader = threading.Thread(target=lambda: asyncio.run(_read_feed(f"ws://127.0.0.1:{port}/ws/live", token, stop,
                                                                    seen, ready)), daemon=True)
    result = LatencyResult(workers=workers, flush_ms=(worker_batch or {}).get("flush_interval_ms",
                                                                            BatchConfig().flush_interval_ms))
    prober = _Prober(broker_url, group.root, probe_panels)
    try:
        reader.start()
        if not ready.wait(30):
            raise SystemExit("the WebSocket client did not get its subscription")
        prober.reset_all()
        background.start()
        time.sleep(3)                       # let the background stream settle
        checkpoints, started = _checkpoints(), datetime.now(timezone.utc)
        n, end = 0, time.monotonic() + duration
        while time.monotonic() < end:
            prober.probe(n)
            n += 1
            time.sleep(1 / probe_rate)
        time.sleep(3)                       # the last probes' events
        prober.reset_all()
        stop.set()
        reader.join(10)
        result.stored_at_end = stored_rows()
        background_stats = results.get(timeout=60)
        result.background_rate, result.background_readings = background_stats.rate, background_stats.readings
        latencies = match_probes(prober.probes, seen)
        result.probes = len(latencies)
        result.to_client_ms = [ms for ms in latencies if ms is not None]
        result.to_client_alarms_ms = [ms for probe, ms in zip(prober.probes, latencies, strict=True)
                                      if probe["kind"] == "alarm" and ms is not None]
        result.missing = result.probes - len(result.to_client_ms)
        result.to_commit_ms = _commit_latencies(prober)
        result.to_announce_ms = announce_latencies(prober.probes, seen)
        result.maintenance = database_maintenance(started, probe_rate, checkpoints)
    finally:
        stop.set()
        prober.close()
        background.join(30)
        stop_process(server)
        group.stop()
    return result


__all__ = ["LatencyResult", "run_latency"]
