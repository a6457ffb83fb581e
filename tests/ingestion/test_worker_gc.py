# SPDX-License-Identifier: AGPL-3.0-or-later
"""A worker process freezes what it loaded and collects less often (worker.gc_threshold)."""
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
print(before[0], gc.get_threshold()[0], gc.get_freeze_count() > 0)
"""


def _probe(threshold: int) -> list[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "twin.settings"}
    out = subprocess.run([sys.executable, "-c", PROBE, str(threshold)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True)
    return out.stdout.split()


def test_a_worker_process_freezes_its_start_up_objects_and_raises_the_youngest_threshold():
    assert _probe(20_000) == ["700", "20000", "True"]


def test_a_threshold_of_zero_leaves_pythons_collector_as_it_is():
    assert _probe(0) == ["700", "700", "False"]
