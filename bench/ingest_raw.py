# SPDX-License-Identifier: AGPL-3.0-or-later
"""The raw limits the ingestion path is judged against, measured in the same run.

* **MQTT only**: a bare paho publisher process → Mosquitto → a bare paho
  subscriber process, no parsing, no storage; a pre-rendered payload the size
  of a simulator reading. QoS 1 uses the publisher settings that make paho
  fastest here (in-flight 100, at most 150 unacknowledged: see
  ``ingestion/simulator/publisher.py``), so the peer is not handicapped.
* **Simulator flat out**: ``twin simulate``'s publisher in 1..N processes,
  with a counting subscriber, to state what it really reaches.
* **COPY only**: pre-rendered rows straight into ``twin_observation`` (the
  storage step without any of the path in front of it).
"""
from __future__ import annotations

import io
import multiprocessing
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

PAYLOAD = (b'{"type":"AirQualityObserved","dateObserved":"2026-11-24T05:00:00.123456Z",'
           b'"pm25":68.2,"pm10":104.9}')
IDLE_S = 3.0


@dataclass(frozen=True, slots=True)
class Throughput:
    what: str
    sent: int
    received: int
    seconds: float          # first to last message at the subscriber

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0

    @property
    def lost(self) -> int:
        return max(self.sent - self.received, 0)


def _client(prefix: str):
    import paho.mqtt.client as mqtt

    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{prefix}-{uuid.uuid4().hex[:8]}",
                       protocol=mqtt.MQTTv5)


def subscriber(host: str, port: int, topic: str, qos: int, ready, results) -> None:
    """Count messages; report (count, first, last) once nothing arrived for ``IDLE_S``."""
    state = {"count": 0, "first": 0.0, "last": 0.0}

    def on_message(client, userdata, message) -> None:
        now = time.perf_counter()
        if not state["count"]:
            state["first"] = now
        state["count"] += 1
        state["last"] = now

    client = _client("bench-sub")
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=qos)
    client.on_subscribe = lambda c, u, mid, codes, p: ready.set()
    client.connect(host, port)
    client.loop_start()
    while not state["count"] or time.perf_counter() - state["last"] < IDLE_S:
        time.sleep(0.05)
    client.disconnect()
    client.loop_stop()
    results.put((state["count"], state["first"], state["last"]))


def raw_publisher(host: str, port: int, root: str, qos: int, seconds: float, results) -> None:
    """Publish the same payload as fast as paho goes for ``seconds``; report how many."""
    acked = [0]
    client = _client("bench-pub")
    client.max_inflight_messages_set(100)
    client.on_publish = lambda c, u, mid, rc, p: acked.__setitem__(0, acked[0] + 1)
    client.connect(host, port)
    client.loop_start()
    topics = [f"{root}/hue/sensor/raw-{i}/air" for i in range(100)]
    sent, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for topic in topics:
            client.publish(topic, PAYLOAD, qos=qos)
            sent += 1
            while qos and sent - acked[0] > 150:
                time.sleep(0.0002)
    deadline = time.perf_counter() + 30
    while qos and acked[0] < sent and time.perf_counter() < deadline:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    results.put(sent)


def _counted(host: str, port: int, root: str, qos: int, publish) -> tuple[object, int, float]:
    """Run ``publish(results_queue)`` in its own process against a counting subscriber process.

    Returns what the publisher reported, the messages the subscriber counted
    and the subscriber's first-to-last time.
    """
    ctx = multiprocessing.get_context("spawn")
    ready, results, sent_q = ctx.Event(), ctx.Queue(), ctx.Queue()
    sub = ctx.Process(target=subscriber, args=(host, port, f"{root}/#", qos, ready, results))
    sub.start()
    if not ready.wait(20):
        sub.terminate()
        raise SystemExit("the benchmark subscriber got no SUBACK")
    pub = ctx.Process(target=publish, args=(sent_q,))
    pub.start()
    sent = sent_q.get(timeout=600)
    pub.join(30)
    received, first, last = results.get(timeout=120)
    sub.join(10)
    return sent, received, last - first


@dataclass(frozen=True, slots=True)
class _Target:
    """A picklable "call this with the result queue appended" for spawned processes."""

    fn: object
    args: tuple

    def __call__(self, results) -> None:
        self.fn(*self.args, results)


def measure_raw(host: str, port: int, qos: int, seconds: float) -> Throughput:
    """paho → Mosquitto → paho, nothing else."""
    root = f"raw{uuid.uuid4().hex[:6]}"
    sent, received, elapsed = _counted(host, port, root, qos, _Target(raw_publisher, (host, port, root, qos, seconds)))
    return Throughput(f"raw paho → Mosquitto → paho, QoS {qos}", sent, received, elapsed)


def simulator_publisher(plan, processes: int, results) -> None:
    """Child process: the simulator's own ``run_fleet``; reports its :class:`PublishStats`."""
    from ingestion.simulator.publisher import run_fleet

    results.put(run_fleet(plan, processes))


def measure_simulator(plan, root: str, processes: int) -> tuple[Throughput, float]:
    """The simulator flat out for ``plan.duration``; delivered throughput and its own publish rate."""
    from dataclasses import replace

    stats, received, elapsed = _counted(plan.host, plan.port, root, plan.qos,
                                        _Target(simulator_publisher, (replace(plan, rate=0), processes)))
    label = f"`twin simulate` publisher, {processes} process{'es' if processes > 1 else ''}, QoS {plan.qos}"
    return Throughput(label, stats.messages, received, elapsed), stats.rate


def measure_copy(feature_ids: list[int], rows: int) -> Throughput:
    """Pre-rendered rows, one ``COPY … FROM STDIN`` into the partitioned ``twin_observation``."""
    from django.db import connection

    from bench.ingest_support import reset_observations
    from twin.services import ensure_partitions

    now = datetime.now(timezone.utc).replace(microsecond=0)
    ensure_partitions(now - timedelta(days=1), now + timedelta(days=1))
    reset_observations()
    buffer = io.StringIO()
    count = len(feature_ids)
    for i in range(rows):
        moment = now - timedelta(microseconds=i // count)
        buffer.write(f"{feature_ids[i % count]}\t{moment.isoformat()}\t{{\"pm25\": {i % 300}.5}}\t\\N\n")
    data = buffer.getvalue().encode()
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    started = time.perf_counter()
    with connection.cursor() as cursor, cursor.cursor.copy(
            'COPY twin_observation (feature_id, time, "values", position) FROM STDIN') as copy:
        for offset in range(0, len(data), 1 << 20):
            copy.write(data[offset:offset + (1 << 20)])
    elapsed = time.perf_counter() - started
    reset_observations()
    return Throughput("raw COPY into twin_observation", rows, rows, elapsed)


__all__ = ["Throughput", "measure_copy", "measure_raw", "measure_simulator"]
