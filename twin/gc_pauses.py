# SPDX-License-Identifier: AGPL-3.0-or-later
"""Log the cyclic garbage collector's long pauses in a long-running process.

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


__all__ = ["PAUSE_LOG_MS", "watch_gc_pauses"]
