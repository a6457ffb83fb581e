# SPDX-License-Identifier: AGPL-3.0-or-later
"""A worker process freezes what it loaded and collects between batches (worker.gc_threshold)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, sys
import django
django.setup()                       # as in a `twin run-ingest` process
from ingestion.worker import tune_gc
before = gc.get_threshold()
tune_gc(int(sys.argv[1]))
print(before[0], gc.isenabled(), gc.get_freeze_count() > 0)
"""

BOUNDARY = """
import gc, weakref
from twin.gc_pauses import collect_at_boundary, defer_collections

class Node:
    pass

defer_collections(1000)
node = Node()
node.me = node                       # a reference cycle: only the collector frees it
ref = weakref.ref(node)
del node
few = [[] for _ in range(100)]       # fewer survivors than the threshold: nothing collected
collect_at_boundary()
kept_below = ref() is not None
many = [[] for _ in range(1500)]
collect_at_boundary()
print(gc.isenabled(), kept_below, ref() is None)
"""


def _probe(threshold: int, code: str = PROBE) -> list[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "twin.settings"}
    out = subprocess.run([sys.executable, "-c", code, str(threshold)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True)
    return out.stdout.split()


def test_a_worker_process_freezes_its_start_up_objects_and_leaves_collecting_to_batch_boundaries():
    assert _probe(20_000) == ["700", "False", "True"]


def test_a_threshold_of_zero_leaves_pythons_collector_as_it_is():
    assert _probe(0) == ["700", "True", "False"]


def test_between_batches_cycles_are_collected_once_the_threshold_of_survivors_is_reached():
    assert _probe(0, BOUNDARY) == ["False", "True", "True"]
