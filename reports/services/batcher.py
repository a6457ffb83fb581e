# SPDX-License-Identifier: AGPL-3.0-or-later
"""An in-process group-commit writer: concurrent filings share one transaction.

Callers (request threads) check their draft themselves, then :meth:`Batcher.submit`
it and wait on a future; one writer thread takes whatever is queued (up to
``max_batch``, waiting at most ``linger_s`` after the first draft for more),
files it with :func:`reports.services.filing.file_batch` on its own
connection, and resolves each future with the stored report or its error
only after the commit — a citizen never gets a confirmation for a report
that was rolled back — then hands the batch's new events to its announcer
thread, which publishes them live (in order) and logs each filing while the
writer goes on.

Why a thread and not per-request transactions: the reports layer's
data-version row is locked by each feature write until commit, so
concurrent single-report transactions run one after another anyway; a
batch pays that lock, the commit and the statements once.

Under ASGI (daphne) sync views share one thread, so a request files alone:
the linger bounds its extra wait (a few ms), and the writer never needs the
request thread, so nothing can deadlock. Under a threaded server
(gunicorn gthread, the benchmark's threads) concurrent filings batch.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import connection

logger = logging.getLogger(__name__)

MAX_BATCH = 64
LINGER_S = 0.003
# Writer threads. Two were measured (one inserting while the other holds the layer's data-version
# row lock until its commit): no gain on this machine (68.9 vs 68.8 reports/s at 32 submitters), so one.
WRITERS = 1
_STOP = object()


class Batcher:
    def __init__(self, max_batch: int = MAX_BATCH, linger_s: float = LINGER_S, writers: int = WRITERS) -> None:
        self.max_batch, self.linger_s = max_batch, linger_s
        self.queue: queue.Queue = queue.Queue()
        # Live announcements leave the writer's loop: publishing a batch's events took 13–22 ms of a
        # ~110 ms batch cycle, during which the next batch waited. One thread keeps their order.
        self.announcer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reports-announcer")
        self.threads = [threading.Thread(target=self._run, name=f"reports-batcher-{i}", daemon=True)
                        for i in range(writers)]
        for thread in self.threads:
            thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self.threads[0]

    def alive(self) -> bool:
        return all(t.is_alive() for t in self.threads)

    def submit(self, prepared) -> Future:
        future: Future = Future()
        self.queue.put((prepared, future))
        return future

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then end the thread and close its connection."""
        self.queue.put(_STOP)
        for thread in self.threads:
            thread.join(timeout)
        self.announcer.submit(connection.close)     # its thread's connection, if an announcement opened one
        self.announcer.shutdown(wait=True)

    def _take(self) -> list:
        batch = [self.queue.get()]
        if batch[0] is _STOP:
            self.queue.put(_STOP)        # for the other writers
            return []
        deadline = time.monotonic() + self.linger_s
        while len(batch) < self.max_batch:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                item = None
            if item is _STOP:
                self.queue.put(_STOP)    # after this batch
                break
            if item is not None:
                batch.append(item)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                item = self.queue.get(timeout=left)
            except queue.Empty:
                break
            if item is _STOP:
                self.queue.put(_STOP)
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        from reports.services.filing import file_batch

        while True:
            batch = self._take()
            if not batch:
                connection.close()
                return
            try:
                results = file_batch([p for p, _ in batch], announce_later=True, count_attempts=True)
            except BaseException as exc:  # handed to every waiting caller, never lost in this thread
                logger.exception("report batch of %d failed", len(batch))
                connection.close()       # a broken connection is not reused by the next batch
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                future.set_result(result)
            stored = [(r, len(p.media)) for (p, _), r in zip(batch, results, strict=True)
                      if not isinstance(r, BaseException)]
            self.announcer.submit(_after_commit, stored)
            _drop_if_broken()


def _after_commit(stored: list) -> None:
    """In the announcer thread: publish the batch's new events live, then log each filing (off the hot threads)."""
    from reports.services.filing import announce_filed, log_filed   # imported when used, as in _run

    announce_filed([report for report, _ in stored])
    for report, media_count in stored:
        log_filed(report, media_count)


def _drop_if_broken() -> None:
    """After a database error, a connection that no longer works is closed; the next batch reconnects.

    (What ``close_old_connections`` does at the end of a request, which never comes for this thread.)
    """
    if connection.connection is not None and connection.errors_occurred:
        if not connection.is_usable():
            connection.close()
        connection.errors_occurred = False


_batcher: Batcher | None = None
_lock = threading.Lock()


def batcher() -> Batcher:
    """The process's writer, started on first use."""
    global _batcher
    with _lock:
        if _batcher is None or not _batcher.alive():
            _batcher = Batcher()
        return _batcher


def stop() -> None:
    """Stop the process's writer (tests: its connection must not outlive the test database)."""
    global _batcher
    with _lock:
        if _batcher is not None:
            _batcher.stop()
            _batcher = None


__all__ = ["Batcher", "LINGER_S", "MAX_BATCH", "batcher", "stop"]
