# SPDX-License-Identifier: AGPL-3.0-or-later
"""The cyclic garbage collector in long-running processes: log its long pauses, or run it between batches.

Why: every thread of a Python process stands still while the collector runs,
and a full collection walks every tracked object the process holds. A fire
alarm waiting behind such a pause shows up only as a tail latency; this puts
a time and a size on it in the process's log (ingestion workers, the web
process's live hub).
"""
from __future__ import annotations

import gc
import logging
import time

logger = logging.getLogger(__name__)

PAUSE_LOG_MS = 20.0
_started: list[float] = []


def _on_gc(phase: str, info: dict) -> None:
    if phase == "start":
        _started[:] = [time.perf_counter()]
    elif _started:
        took_ms = (time.perf_counter() - _started[0]) * 1000
        if took_ms >= PAUSE_LOG_MS:
            logger.warning("garbage collection of generation %d stopped the process for %.0f ms "
                           "(%d objects freed)", info.get("generation", -1), took_ms, info.get("collected", 0))


def watch_gc_pauses() -> None:
    """Log every collection of ``PAUSE_LOG_MS`` or more from now on (idempotent)."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


class _Deferred:
    threshold = 0          # 0: automatic collection (Python's own), nothing deferred
    collections = 0


def defer_collections(threshold: int) -> None:
    """Turn automatic collection off; :func:`collect_at_boundary` collects instead.

    Why: an ingestion worker holds a whole batch (up to 20,000 readings) alive
    while it builds and commits it; automatic collections triggered meanwhile
    walked all of it and freed nothing (20–60 ms pauses, hundreds a minute with
    batched payloads, 24 Nov). Between batches almost nothing young is alive,
    so the same collection is short. ``threshold <= 0`` restores Python's own.
    """
    _Deferred.threshold = max(0, threshold)
    if _Deferred.threshold:
        gc.disable()
    else:
        gc.enable()


def collect_at_boundary() -> None:
    """Collect if ``threshold`` allocations survived since the last collection (cheap when not).

    Every 10th collection takes the middle generation too and every 100th all
    of them, as Python's default thresholds do.
    """
    if not _Deferred.threshold or gc.get_count()[0] < _Deferred.threshold:
        return
    _Deferred.collections += 1
    n = _Deferred.collections
    gc.collect(2 if n % 100 == 0 else 1 if n % 10 == 0 else 0)


__all__ = ["PAUSE_LOG_MS", "collect_at_boundary", "defer_collections", "watch_gc_pauses"]
