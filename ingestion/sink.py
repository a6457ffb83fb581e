# SPDX-License-Identifier: AGPL-3.0-or-later
"""Batching sink: deliveries → one transaction → acknowledgements → rules.

Adapters hand every message to :meth:`Sink.submit` (from their network
thread) as a :class:`Delivery` carrying an ``ack`` callback. The sink thread
collects deliveries and flushes them every ``flush_interval_ms`` or every
``max_messages`` / ``max_readings``:

1. resolve devices and extents (cached lookups);
2. **one transaction**: observations through ``record_observations`` (COPY,
   idempotent on ``(feature_id, time)``), ``last_seen``/``status`` through
   ``mark_devices_seen`` (one UPDATE), dead letters;
3. only then acknowledge every message of the batch, in arrival order
   (MQTT 5 §4.6 asks PUBACKs in the order PUBLISHes arrived);
4. call the rules engine with the batch's readings.

A crash before step 2 commits means the broker redelivers (nothing lost); a
crash between 2 and 3 means a redelivery that the unique key turns into a
no-op (nothing stored twice). While PostgreSQL is unreachable the batch is
retried with back-off and nothing is acknowledged, so the broker holds the
stream (it stops sending at ``receive_maximum`` unacknowledged messages).
"""
from __future__ import annotations

import logging
import operator
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from itertools import compress, repeat
from typing import NamedTuple

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction
from django.utils.module_loading import import_string

from ingestion.config import BatchConfig
from ingestion.deadletter import store_dead_letters
from ingestion.devices import DeviceDirectory
from ingestion.messages import Reading, Rejected
from ingestion.parsing import ParsedMessage, Reason, reject
from twin.gc_pauses import collect_at_boundary
from twin.services import mark_devices_seen, record_observations

logger = logging.getLogger(__name__)

# Errors meaning "the database is not there right now", as opposed to "the
# database refuses this data". COPY runs on the raw psycopg cursor, so its
# errors arrive unwrapped by Django.
RETRYABLE = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
STATS_EVERY_S = 30.0

RulesHook = Callable[[list[Reading]], None]


def _no_ack() -> None:
    return None


class Delivery(NamedTuple):
    """One message as an adapter hands it over: parsed (or refused) plus how to acknowledge it (one per message)."""

    message: ParsedMessage | Rejected
    ack: Callable[[], None] = _no_ack

    @property
    def size(self) -> int:
        return len(self.message.times) if isinstance(self.message, ParsedMessage) else 0


@dataclass(slots=True)
class CommitReport:
    readings: int = 0
    inserted: int = 0
    dead_letters: int = 0
    devices: int = 0

    def add(self, other: CommitReport) -> None:
        self.readings += other.readings
        self.inserted += other.inserted
        self.dead_letters += other.dead_letters
        self.devices += other.devices


def default_rules_hook() -> RulesHook:
    """The rules engine's entry point, called with each committed batch."""
    # Imported late: the engine loads the rules configuration on first use.
    from ingestion.rules.engine import evaluate

    return evaluate


class Liveness:
    """Which devices' ``last_seen`` and ``status`` a batch must write, per worker process.

    A device reporting every second does not need its row rewritten every
    batch: it is written when its ``last_seen`` moved by at least
    ``resolution_s`` since this worker last wrote it, when it reports a
    status other than the one this worker last wrote, and the first time
    this worker hears it. The offline timers work in minutes, so a few
    seconds of resolution change no verdict, and a busy stream's batches
    stop rewriting (and announcing) the same feature rows over and over.
    ``resolution_s = 0`` writes every batch.
    """

    def __init__(self, resolution_s: float) -> None:
        self._resolution = timedelta(seconds=resolution_s)
        self._written: dict[int, tuple[datetime, str | None]] = {}

    def due(self, seen: dict[int, datetime], statuses: dict[int, str]) -> dict[int, datetime]:
        written, resolution = self._written, self._resolution
        due = {}
        for fid, at in seen.items():
            last = written.get(fid)
            if (last is None or at - last[0] >= resolution
                    or (fid in statuses and statuses[fid] != last[1])):
                due[fid] = at
        return due

    def remember(self, seen: dict[int, datetime], statuses: dict[int, str]) -> None:
        """Called once the transaction that wrote ``seen`` committed."""
        written = self._written
        for fid, at in seen.items():
            last = written.get(fid)
            status = statuses.get(fid, last[1] if last else None)
            written[fid] = (max(at, last[0]) if last else at, status)

    def forget(self) -> None:
        self._written.clear()


def commit(readings: Sequence[Reading], rejected: Sequence[Rejected] = (),
           liveness: Liveness | None = None) -> CommitReport:
    """Store readings, device liveness and dead letters in one transaction."""
    rows, seen, latest = _unique_in_order(readings)
    statuses: dict[int, str] = {}
    for reading in compress(rows, map(operator.eq, map(_STREAM, rows), repeat(_STATUS))):
        if reading.values.get("deviceState"):
            statuses[reading.feature_id] = reading.values["deviceState"]
    report = CommitReport(readings=len(readings))
    if liveness is not None:
        seen = liveness.due(seen, statuses)
        statuses = {fid: status for fid, status in statuses.items() if fid in seen}
    with transaction.atomic():
        if latest:   # registered first: runs before the liveness announcement, which it makes redundant
            transaction.on_commit(partial(announce_readings, latest))
        if rows:     # Readings are rows as they are: they carry ObservationRow's five attributes
            report.inserted = record_observations(rows).inserted
        report.devices = mark_devices_seen(seen, statuses)
        report.dead_letters = store_dead_letters(rejected)
    if liveness is not None:
        liveness.remember(seen, statuses)
    return report


def _unique_in_order(readings: Sequence[Reading]) -> tuple[list[Reading], dict[int, datetime], dict[int, Reading]]:
    """The readings sorted by (feature, time), a repeat inside the batch kept once (the first to arrive);
    each feature's latest time; each feature's newest reading (for the live map).

    Sorted: two workers writing overlapping keys take locks in one order.
    Why not simply ``sorted`` by (feature, time): comparing those tuples was
    7 % of a worker's time on batched payloads. A message's readings come
    from one device in time order, so a stable sort by feature alone (ints,
    fast) is usually already in (feature, time) order with no repeat, which
    one pass of comparisons in C proves; otherwise the full sort decides.
    """
    ordered = sorted(readings, key=_FEATURE)
    keys = list(map(_BY_FEATURE_AND_TIME, ordered))
    if not all(map(operator.lt, keys, keys[1:])):
        ordered = sorted(readings, key=_BY_FEATURE_AND_TIME)
        keys = list(map(_BY_FEATURE_AND_TIME, ordered))
        if not all(map(operator.lt, keys, keys[1:])):     # repeats inside the batch: keep the first of each
            first = [True] + list(map(operator.ne, keys, keys[1:]))
            ordered, keys = list(compress(ordered, first)), list(compress(keys, first))
    return ordered, dict(keys), dict(zip(map(_FEATURE, ordered), ordered))


def announce_readings(latest: dict[int, Reading]) -> None:
    """After the commit: push each feature's newest values and position live (never fails the write)."""
    module = getattr(settings, "LIVE_ANNOUNCER", "")
    if not module:
        return
    try:
        import_string(f"{module}.features_read")(latest)
    except Exception:
        logger.exception("could not announce the readings of %d features", len(latest))


# (feature_id, time) of a Reading, in C: a Python key function cost ~1 µs a reading.
_BY_FEATURE_AND_TIME = operator.itemgetter(Reading._fields.index("feature_id"), Reading._fields.index("time"))
_FEATURE = operator.itemgetter(Reading._fields.index("feature_id"))
_STREAM = operator.itemgetter(Reading._fields.index("stream"))
_STATUS = "status"


def acknowledge(batch: Sequence[Delivery]) -> None:
    """Acknowledge a committed batch in arrival order; a failed ack only means a redelivery.

    Acks with a ``group`` (an adapter with ``ack_many``, see
    :meth:`ingestion.adapters.mqtt.MqttAdapter.ack_many`) go to it together:
    one wake-up of its network thread per batch instead of one per message.
    A batch comes from one adapter, so arrival order is kept.
    """
    groups: dict[int, tuple[object, list]] = {}
    for delivery in batch:
        group = getattr(delivery.ack, "group", None)
        if group is not None:
            groups.setdefault(id(group), (group, []))[1].append(delivery.ack)
            continue
        try:
            delivery.ack()
        except Exception:
            logger.exception("acknowledgement failed (the broker will redeliver; storage is idempotent)")
    for group, acks in groups.values():
        try:
            group.ack_many(acks)  # type: ignore[attr-defined]
        except Exception:
            logger.exception("acknowledgement of %d messages failed (the broker will redeliver; "
                             "storage is idempotent)", len(acks))


def run_rules(rules: RulesHook | None, readings: list[Reading]) -> None:
    """Rules run after the commit; their failure never loses or blocks readings."""
    if rules is None or not readings:
        return
    try:
        rules(readings)
    except Exception:
        logger.exception("rules engine failed on a batch of %d readings (they are stored)", len(readings))


class Sink:
    """Collects deliveries from adapters and writes them in batches (see the module docstring)."""

    def __init__(self, cfg: BatchConfig, directory: DeviceDirectory, rules: RulesHook | None = None, *,
                 queue_size: int = 10_000) -> None:
        self._cfg = cfg
        self._liveness = Liveness(cfg.last_seen_resolution_s)
        self._directory = directory
        self._rules = rules
        # Hand-over from the adapter's thread. Not a queue.Queue: waking the
        # sink for every message costs more CPU than parsing it; the adapter
        # wakes the sink only when a batch is full, or when the first message
        # of a batch starts its flush timer (`_wake_at`).
        self._inbox: deque[Delivery] = deque()
        self._inbox_readings = 0
        self._inbox_since = 0.0      # when the oldest message now in the inbox arrived
        self._wake = threading.Event()
        self._wake_at = 1
        self._room = threading.Event()
        self._room.set()
        # Bounded: with QoS 1 the broker's receive maximum bounds it already;
        # this protects against a QoS 0 flood while PostgreSQL is down.
        self._queue_size = queue_size
        self._pending: list[Delivery] = []
        self._pending_readings = 0
        self._first_at = 0.0
        self._urgent_streams = frozenset(cfg.urgent_streams)
        self._urgent = False         # the pending batch holds an urgent message: flush it now
        self.totals = CommitReport()
        self._window = CommitReport()
        self._window_start = time.monotonic()
        self.last_delivery_at = time.monotonic()
        self.received = 0

    def submit(self, delivery: Delivery) -> None:
        """Called by adapters from their own thread; blocks only when the inbox is full."""
        if len(self._inbox) >= self._queue_size:
            self._room.clear()
            self._room.wait(60)
        now = self.last_delivery_at = time.monotonic()
        self.received += 1
        if not self._inbox:
            self._inbox_since = now
        self._inbox.append(delivery)
        self._inbox_readings += delivery.size
        if (len(self._inbox) >= self._wake_at or self._inbox_readings >= self._cfg.max_readings
                or self._is_urgent(delivery)):
            self._wake.set()

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing waiting to be stored."""
        return not self._pending and not self._inbox

    def run(self, stop: threading.Event) -> None:
        """The sink loop, until ``stop`` is set; then a last flush of what was collected."""
        try:
            while not stop.is_set():
                self._collect(self._wait_time())
                if self._due():
                    self._flush_until_done(stop)
                    collect_at_boundary()      # the batch's objects are gone: a short collection, if one is due
                self._log_stats()
            self._collect(0)
            if self._pending:
                self._flush_until_done(stop)
        finally:
            # Threads own their connections; close ours so nothing dangles.
            connections.close_all()

    def _wait_time(self) -> float:
        interval = self._cfg.flush_interval_ms / 1000
        if not self._pending:
            return interval
        if self._urgent:
            return 0.0
        return max(0.0, self._first_at + interval - time.monotonic())

    def _due(self) -> bool:
        if not self._pending:
            return False
        return (self._urgent or len(self._pending) >= self._cfg.max_messages
                or self._pending_readings >= self._cfg.max_readings
                or time.monotonic() - self._first_at >= self._cfg.flush_interval_ms / 1000)

    def _collect(self, timeout: float) -> None:
        """Wait (at most ``timeout``) until a batch is full or one starts, then take the inbox."""
        room = self._cfg.max_messages - len(self._pending)
        self._wake_at = 1 if not self._pending else max(1, room)
        if timeout > 0 and len(self._inbox) < self._wake_at:
            self._wake.wait(timeout)
        self._wake.clear()           # before draining: a message arriving now wakes the next wait
        self._inbox_readings = 0
        if self._inbox and not self._pending:
            # The flush timer runs from the arrival of the batch's first
            # message, not from when the sink got round to it: messages that
            # waited in the inbox during a commit are flushed at once.
            self._first_at = min(self._inbox_since, time.monotonic())
        while self._inbox and len(self._pending) < self._cfg.max_messages \
                and self._pending_readings < self._cfg.max_readings:
            self._add(self._inbox.popleft())
        if len(self._inbox) < self._queue_size:
            self._room.set()

    def _add(self, delivery: Delivery) -> None:
        self._pending.append(delivery)
        self._pending_readings += delivery.size
        if not self._urgent and self._is_urgent(delivery):
            self._urgent = True

    def _is_urgent(self, delivery: Delivery) -> bool:
        """A message on an urgent stream (a device alert) flushes its batch at once (``urgent_streams``)."""
        return getattr(delivery.message, "stream", None) in self._urgent_streams

    def _flush_until_done(self, stop: threading.Event) -> CommitReport | None:
        """Flush, retrying with back-off while the database is unreachable."""
        delay = 0.2
        while True:
            try:
                return self.flush()
            except RETRYABLE as exc:
                logger.warning("database unavailable (%s): %d messages kept unacknowledged, retrying in %.1f s",
                               str(exc).strip()[:200], len(self._pending), delay)
                _reset_connection()
                self._liveness.forget()
            except Exception:
                # Not even the dead-letter store accepts the batch (a schema
                # problem, a bug): hold the stream rather than lose it.
                logger.exception("cannot store a batch of %d messages; nothing acknowledged, retrying in %.1f s",
                                 len(self._pending), delay)
                _reset_connection()
            # Back off in both cases. Retrying an unreachable database at once
            # (as this loop did) spun the sink thread, starved paho's network
            # thread of the GIL and let the MQTT keep-alive lapse.
            if stop.wait(delay):
                logger.warning("stopping with %d messages unacknowledged; the broker will redeliver them",
                               len(self._pending))
                return None
            delay = min(delay * 2, self._cfg.retry_max_s)

    def flush(self) -> CommitReport:
        """Write the pending batch, then acknowledge it, then run the rules."""
        batch = self._pending
        if not batch:
            return CommitReport()
        readings, rejected = self._resolve(batch)
        try:
            report = commit(readings, rejected, self._liveness)
        except RETRYABLE:
            raise
        except Exception:
            # The database refuses this data (not a connection problem): find
            # the message at fault instead of blocking the stream.
            logger.exception("batch of %d messages refused; storing message by message", len(batch))
            self._directory.clear()
            readings, report = self._commit_one_by_one(batch)
        self._pending, self._pending_readings, self._urgent = [], 0, False
        acknowledge(batch)
        self.totals.add(report)
        self._window.add(report)
        run_rules(self._rules, readings)
        return report

    def _resolve(self, batch: list[Delivery]) -> tuple[list[Reading], list[Rejected]]:
        readings: list[Reading] = []
        rejected: list[Rejected] = []
        self._directory.prefetch((d.message.city, d.message.kind, d.message.device_id) for d in batch
                                 if isinstance(d.message, ParsedMessage))
        for delivery in batch:
            outcome = self._outcome(delivery)
            if isinstance(outcome, Rejected):
                rejected.append(outcome)
            else:
                readings.extend(outcome)
        return readings, rejected

    def _outcome(self, delivery: Delivery) -> list[Reading] | Rejected:
        message = delivery.message
        if isinstance(message, Rejected):
            return message
        try:
            return self._directory.resolve(message)
        except RETRYABLE:
            raise
        except Exception as exc:
            # A message that breaks resolution (a bug) must not hold the stream:
            # it is kept as a dead letter, replayable once the bug is fixed.
            logger.exception("cannot resolve the message on %s", message.topic)
            return reject(message.topic, message.payload, Reason.INTERNAL_ERROR, repr(exc)[:500],
                          message.received_at)

    def _commit_one_by_one(self, batch: list[Delivery]) -> tuple[list[Reading], CommitReport]:
        stored: list[Reading] = []
        total = CommitReport()
        for delivery in batch:
            outcome = self._outcome(delivery)
            if isinstance(outcome, Rejected):
                total.add(commit([], [outcome]))
                continue
            try:
                total.add(commit(outcome))
                stored.extend(outcome)
            except RETRYABLE:
                raise
            except Exception as exc:
                message = delivery.message
                logger.warning("message on %s refused by the database: %s", message.topic, exc)
                total.add(commit([], [reject(message.topic, message.payload, Reason.STORAGE_ERROR,
                                             str(exc)[:1000], message.received_at)]))
        return stored, total

    def _log_stats(self) -> None:
        now = time.monotonic()
        if now - self._window_start < STATS_EVERY_S:
            return
        w, elapsed = self._window, now - self._window_start
        if w.readings or w.dead_letters:
            logger.info("ingest: %d readings (%.0f/s), %d new rows, %d dead letters, %d devices in %.0f s",
                        w.readings, w.readings / elapsed, w.inserted, w.dead_letters, w.devices, elapsed)
        self._window, self._window_start = CommitReport(), now


def _reset_connection() -> None:
    """Drop this thread's (possibly dead) connection; the next query opens a fresh one."""
    try:
        connections["default"].close()
    except Exception:
        logger.debug("closing a dead connection failed", exc_info=True)


__all__ = ["CommitReport", "Delivery", "RETRYABLE", "Sink", "commit", "default_rules_hook", "run_rules"]
