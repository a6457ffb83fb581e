# SPDX-License-Identifier: AGPL-3.0-or-later
"""One ingestion worker: the MQTT adapter feeding a batching sink.

``twin run-ingest`` runs one per process; tests run several in threads. The
adapter's network thread only parses (no database); the sink's thread owns
the database connection, so a database outage is handled in one place.
"""
from __future__ import annotations

import gc
import logging
import threading
import time

from ingestion.adapters.mqtt import MqttAdapter
from ingestion.config import IngestConfig
from ingestion.devices import DeviceDirectory
from ingestion.sink import RulesHook, Sink, default_rules_hook
from twin.gc_pauses import defer_collections, watch_gc_pauses

logger = logging.getLogger(__name__)

_DEFAULT = object()


class IngestWorker:
    """Wires config → adapter → sink and runs them until :meth:`stop`."""

    def __init__(self, cfg: IngestConfig, rules: RulesHook | None | object = _DEFAULT) -> None:
        self.cfg = cfg
        hook = default_rules_hook() if rules is _DEFAULT else rules
        self.sink = Sink(cfg.batch, DeviceDirectory(cfg.devices), hook,  # type: ignore[arg-type]
                         queue_size=max(10_000, 4 * cfg.broker.receive_maximum))
        self.adapter = MqttAdapter(cfg, self.sink.submit)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.end_session = False

    def run(self) -> None:
        """Blocking: connect, then store batches until :meth:`stop` is called."""
        logger.info("ingest worker %s starting (group %s, topics under %s/)", self.cfg.worker.name,
                    self.cfg.worker.shared_group, self.cfg.topics.root)
        self.adapter.start()
        try:
            self.sink.run(self._stop)
        finally:
            self.adapter.stop(end_session=self.end_session)
            logger.info("ingest worker %s stopped", self.cfg.worker.name)

    def stop(self, *, end_session: bool = False) -> None:
        """Ask :meth:`run` to flush what it holds and return (safe from any thread or signal handler).

        ``end_session`` also ends the broker session: use it when this worker
        leaves the group for good, or the broker keeps queueing its share.
        """
        self.end_session = self.end_session or end_session
        self._stop.set()

    def start_thread(self) -> threading.Thread:
        """Run in a background thread (tests, embedding)."""
        self._thread = threading.Thread(target=self.run, name=f"ingest-{self.cfg.worker.name}", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def retire(self, idle_s: float = 3.0, timeout_s: float = 600.0) -> bool:
        """Drain this worker's session, then end it: the worker leaves its group for good.

        Returns True if the session drained (no message for ``idle_s`` after
        subscribing) before ``timeout_s``. Runs in the calling thread.
        """
        thread = self.start_thread()
        deadline = time.monotonic() + timeout_s
        drained = False
        if self.wait_ready(min(timeout_s, 60)):
            while time.monotonic() < deadline and thread.is_alive():
                if self.sink.idle and time.monotonic() - self.sink.last_delivery_at >= idle_s:
                    drained = True
                    break
                time.sleep(0.2)
        self.stop(end_session=drained)
        self.join()
        return drained

    def wait_ready(self, timeout: float) -> bool:
        """True once connected and subscribed."""
        return self.adapter.subscribed.wait(timeout)


def tune_gc(threshold: int) -> None:
    """Spare a long-running worker the collector's rescans of what it loaded at start and of its batches.

    Every batch allocates thousands of short-lived objects, which triggered
    the youngest generation's collection every 700 allocations, each full
    collection walked everything Django, the rules and the schemas loaded,
    and a collection in the middle of a batch walked the whole batch and
    freed nothing. Now what is loaded at start is frozen (``gc.freeze``) and
    the sink collects between batches, once ``threshold`` allocations
    survived (:func:`twin.gc_pauses.defer_collections`); readings are freed by
    reference counting as before, only reference cycles wait for the next
    batch boundary. ``threshold <= 0`` keeps Python's defaults.
    """
    watch_gc_pauses()
    if threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    defer_collections(threshold)


__all__ = ["IngestWorker", "tune_gc"]
