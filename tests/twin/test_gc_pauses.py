# SPDX-License-Identifier: AGPL-3.0-or-later
"""Long garbage-collection pauses are logged with their generation and duration."""
from __future__ import annotations

import gc
import logging

from twin import gc_pauses


def test_a_collection_longer_than_the_threshold_is_logged_with_generation_and_milliseconds(caplog, monkeypatch):
    monkeypatch.setattr(gc_pauses, "PAUSE_LOG_MS", 0.0)
    gc_pauses.watch_gc_pauses()
    gc_pauses.watch_gc_pauses()                     # idempotent: one callback
    try:
        assert gc.callbacks.count(gc_pauses._on_gc) == 1
        with caplog.at_level(logging.WARNING, logger="twin.gc_pauses"):
            gc.collect(2)
        assert any("generation 2 stopped the process for" in r.getMessage() for r in caplog.records)
    finally:
        gc.callbacks.remove(gc_pauses._on_gc)


def test_short_collections_are_not_logged(caplog):
    gc_pauses.watch_gc_pauses()
    try:
        with caplog.at_level(logging.WARNING, logger="twin.gc_pauses"):
            gc.collect(0)
        assert not [r for r in caplog.records if r.name == "twin.gc_pauses"]
    finally:
        gc.callbacks.remove(gc_pauses._on_gc)
