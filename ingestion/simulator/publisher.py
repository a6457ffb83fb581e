# SPDX-License-Identifier: AGPL-3.0-or-later
"""Publishing a fleet at a set rate: paced, self-throttled, spread over processes.

One paho client per process; a process owns a share of the devices (so each
device's timestamps stay monotonic) and a share of the rate. Why each rule:

* **Pacing**: the loop publishes what is *due* (``rate × elapsed − sent``)
  in small chunks, so the rate holds on average and a stall is caught up
  rather than lost.
* **Self-throttling at QoS 1**: paho 2.x refuses new QoS 1 publishes past
  65,535 unacknowledged, and it rescans its whole outgoing queue on every
  PUBACK, so a long queue costs O(n) per acknowledgement. Measured here
  (paho 2.2 → Mosquitto 2.0, one process): a client in-flight window of
  1,000 with 1,000 queued gave ~2.3k msg/s, a window of 50–100 with at most
  ~1.5 × that unacknowledged gave 7–9k msg/s. So the publisher waits while
  more than ``window`` messages are unacknowledged.
* **Processes, not threads**: the GIL makes a second paho thread in one
  process slower, not faster; separate processes use both cores.
* **No silent drops** (style guide §9): publishes refused by paho (for
  instance while disconnected at QoS 0) are counted and reported.
"""
from __future__ import annotations

import logging
import multiprocessing
import signal
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace

import paho.mqtt.client as mqtt

from ingestion.mqtt_client import BufferedClient
from ingestion.simulator.streams import Behaviours, DeviceSpec, build_device

logger = logging.getLogger(__name__)

CHUNK_S = 0.005            # publish what is due every 5 ms at most
PAHO_QUEUE_LIMIT = 65_535  # paho 2.x refuses QoS 1 publishes beyond this many unacknowledged
BURST = 20                 # publishes queued per wake-up of paho's network thread (BufferedClient.burst)


@dataclass(frozen=True, slots=True)
class PublishPlan:
    """One publisher process's work (picklable: sent to spawned processes)."""

    host: str
    port: int
    devices: tuple[DeviceSpec, ...]
    behaviours: Behaviours
    rate: float = 50                # messages/s of this process; 0 = as fast as possible
    batch: int = 1                  # readings per message (streams that batch)
    qos: int = 0
    duration: float = 10.0          # seconds, 0 = until stopped; ignored with ``once``
    once: bool = False              # one message per device, then stop
    client_id: str = ""
    max_inflight: int = 100         # paho's in-flight window (MQTT "receive maximum" of the broker side)
    window: int = 150               # unacknowledged QoS 1 publishes before the loop waits
    ack_timeout: float = 30.0
    username: str | None = None
    password: str | None = None


@dataclass(slots=True)
class PublishStats:
    """What a run published; ``refused`` were not handed to the broker at all."""

    messages: int = 0
    readings: int = 0
    acked: int = 0
    refused: int = 0
    unacked: int = 0
    bytes: int = 0
    elapsed: float = 0.0
    processes: int = 1
    topics: Counter = field(default_factory=Counter)

    def add(self, other: PublishStats) -> None:
        for name in ("messages", "readings", "acked", "refused", "unacked", "bytes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.elapsed = max(self.elapsed, other.elapsed)
        self.topics.update(other.topics)

    @property
    def rate(self) -> float:
        return self.messages / self.elapsed if self.elapsed else 0.0


class _Client:
    """A paho client that counts acknowledgements and waits for its CONNACK."""

    def __init__(self, plan: PublishPlan) -> None:
        self.acked = 0
        self.connected = False
        self.client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, client_id=plan.client_id, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(plan.max_inflight)
        if plan.username:
            self.client.username_pw_set(plan.username, plan.password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.error("broker refused the simulator's connection: %s", reason_code)
            return
        self.connected = True

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected = False
        if reason_code != 0:
            logger.warning("simulator disconnected (%s); paho reconnects", reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self.acked += 1

    def start(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while not self.connected:
            if time.monotonic() > deadline:
                self.stop()
                raise ConnectionError(f"no CONNACK from mqtt://{host}:{port} within {timeout:.0f} s")
            time.sleep(0.01)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _due(plan: PublishPlan, started: float, sent: int) -> int:
    if plan.rate <= 0:
        return 200
    return min(int((time.monotonic() - started) * plan.rate) - sent, max(int(plan.rate * CHUNK_S), 1) * 20)


def _wait_window(client: _Client, stats: PublishStats, plan: PublishPlan, deadline: float) -> None:
    """At QoS 1, hold while more than ``window`` publishes are unacknowledged."""
    limit = min(plan.window, PAHO_QUEUE_LIMIT - 1)
    while stats.messages - stats.refused - client.acked > limit and time.monotonic() < deadline:
        time.sleep(0.0002)


def _publish(client: _Client, device, plan: PublishPlan, stats: PublishStats) -> None:
    topic, payload, readings = device.message(time.time(), plan.batch)
    info = client.client.publish(topic, payload, qos=plan.qos)
    stats.messages += 1
    if info.rc != mqtt.MQTT_ERR_SUCCESS and not (plan.qos and info.rc == mqtt.MQTT_ERR_NO_CONN):
        stats.refused += 1          # QoS 0 while disconnected, or paho's queue full
        return
    stats.readings += readings
    stats.bytes += len(payload)
    stats.topics[topic.rsplit("/", 1)[1]] += 1


def run_plan(plan: PublishPlan, stop=None) -> PublishStats:
    """Publish one process's share; returns when done, stopped, or ``duration`` is over."""
    devices = [build_device(spec, plan.behaviours) for spec in plan.devices]
    stats = PublishStats()
    if not devices:
        return stats
    client = _Client(plan)
    client.start(plan.host, plan.port)
    started = time.monotonic()
    end = started + plan.duration if plan.duration > 0 else float("inf")
    try:
        if plan.once:
            for device in devices:
                _publish(client, device, plan, stats)
                if plan.qos:
                    _wait_window(client, stats, plan, started + plan.ack_timeout)
        else:
            _paced_loop(client, devices, plan, stats, started, end, stop)
        stats.elapsed = time.monotonic() - started
        _drain(client, stats, plan)
    finally:
        client.stop()
    return stats


def _paced_loop(client: _Client, devices: list, plan: PublishPlan, stats: PublishStats, started: float,
                end: float, stop) -> None:
    turn = 0
    count = len(devices)
    while time.monotonic() < end and not (stop is not None and stop.is_set()):
        due = _due(plan, started, stats.messages)
        if due <= 0:
            time.sleep(min(CHUNK_S, 1 / plan.rate))
            continue
        for start in range(0, due, BURST):
            with client.client.burst():       # one wake-up of paho's network thread per burst
                for _ in range(min(BURST, due - start)):
                    _publish(client, devices[turn % count], plan, stats)
                    turn += 1
            if plan.qos:
                _wait_window(client, stats, plan, end + plan.ack_timeout)


def _drain(client: _Client, stats: PublishStats, plan: PublishPlan) -> None:
    """Wait for the last PUBACKs (QoS 1), so "published" means "the broker has it"."""
    expected = stats.messages - stats.refused
    deadline = time.monotonic() + plan.ack_timeout
    if plan.qos:
        while client.acked < expected and time.monotonic() < deadline:
            time.sleep(0.005)
        stats.acked = client.acked
        stats.unacked = expected - client.acked
    else:
        # QoS 0 has no acknowledgement; wait until paho's socket buffer is written.
        while client.client.want_write() and time.monotonic() < deadline:
            time.sleep(0.005)


def split_plan(plan: PublishPlan, processes: int) -> list[PublishPlan]:
    """Deal devices round-robin over ``processes`` and share the rate by device count."""
    processes = max(1, min(processes, len(plan.devices)))
    run = plan.client_id or f"citytwin-sim-{uuid.uuid4().hex[:8]}"
    plans = []
    for p in range(processes):
        devices = plan.devices[p::processes]
        rate = plan.rate * len(devices) / len(plan.devices) if plan.rate > 0 else 0
        plans.append(replace(plan, devices=devices, rate=rate, client_id=f"{run}-{p}"))
    return plans


def _child(plan: PublishPlan, stop, results) -> None:
    # Ctrl-C reaches the whole process group: only the parent decides, through ``stop``.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        results.put(run_plan(plan, stop))
    except BaseException as exc:   # reported to the parent, which raises it
        results.put(exc)


def run_fleet(plan: PublishPlan, processes: int = 1, stop=None) -> PublishStats:
    """Publish with ``processes`` publisher processes (spawned: no Django, no inherited sockets)."""
    plans = split_plan(plan, processes)
    if len(plans) == 1:
        return run_plan(plans[0], stop)
    ctx = multiprocessing.get_context("spawn")
    child_stop = ctx.Event()
    results = ctx.Queue()
    children = [ctx.Process(target=_child, args=(p, child_stop, results), daemon=True) for p in plans]
    for child in children:
        child.start()
    total = PublishStats(processes=len(children))
    errors = []
    pending = len(children)
    while pending:
        if stop is not None and stop.is_set():
            child_stop.set()
        try:
            outcome = results.get(timeout=0.2)
        except Exception:   # queue.Empty; also covers a child that died without reporting
            if not any(c.is_alive() for c in children) and results.empty():
                errors.append(RuntimeError("a publisher process died without a report"))
                break
            continue
        pending -= 1
        if isinstance(outcome, BaseException):
            errors.append(outcome)
        else:
            total.add(outcome)
    for child in children:
        child.join(10)
    if errors:
        raise errors[0]
    return total


__all__ = ["PublishPlan", "PublishStats", "run_fleet", "run_plan", "split_plan"]
