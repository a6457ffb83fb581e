# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin run-ingest [--workers N] [--shared-group NAME]``: the MQTT ingestion service.

One worker runs in this process. With ``--workers N`` this process becomes a
small supervisor of N worker processes named ``NAME-0`` … ``NAME-{N-1}`` on
one shared subscription (restarting any that dies); more hosts scale out the
same way with other ``--worker-name`` values and the same group.
"""
from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand, CommandError
from pydantic import ValidationError

from ingestion.config import IngestConfig, load_config
from twin.shutdown import stop_on_signals

logger = logging.getLogger(__name__)

RESTART_DELAY_MAX_S = 30.0


class Command(BaseCommand):
    help = ("Receive device messages from MQTT (QoS 1, persistent session, shared subscription) and store them "
            "in batches; refused messages go to dead letters (docs/ingestion.md).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workers", type=int, default=1, help="Worker processes to run here (default 1).")
        parser.add_argument("--shared-group", help="MQTT 5 shared-subscription group (default citytwin-ingest).")
        parser.add_argument("--worker-name", help="Stable worker name; the broker session depends on it "
                                                  "(default: host name).")
        parser.add_argument("--config", help="TOML configuration file (default: INGEST_CONFIG).")
        parser.add_argument("--topic-root", help="First topic level(s) (default city).")
        parser.add_argument("--city", help="Serve one city slug only (default: all).")
        parser.add_argument("--no-rules", action="store_true",
                            help="Store readings without running the rules engine (bulk back-fills).")
        parser.add_argument("--retire", action="store_true",
                            help="Drain this worker's broker session, then end it (the worker leaves its group).")

    def handle(self, *args, workers: int, shared_group: str | None, worker_name: str | None, config: str | None,
               topic_root: str | None, city: str | None, retire: bool, no_rules: bool, **options) -> None:
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        overrides: dict = {"worker": {}, "topics": {}}
        if shared_group:
            overrides["worker"]["shared_group"] = shared_group
        if worker_name:
            overrides["worker"]["name"] = worker_name
        if topic_root:
            overrides["topics"]["root"] = topic_root
        if city:
            overrides["topics"]["city"] = city
        try:
            cfg = load_config(config, **overrides)
        except (ValidationError, ValueError, OSError) as exc:
            raise CommandError(f"invalid ingestion configuration: {exc}") from None
        if workers == 1:
            self._run_one(cfg, retire, no_rules)
        else:
            if retire:
                raise CommandError("--retire applies to one worker: give its --worker-name")
            child = [sys.executable, "-m", "twin.cli", "run_ingest"]
            for flag, value in (("--shared-group", shared_group), ("--config", config),
                                ("--topic-root", topic_root), ("--city", city)):
                if value:
                    child += [flag, value]
            if no_rules:
                child.append("--no-rules")
            self._supervise(cfg, workers, child)

    def _run_one(self, cfg: IngestConfig, retire: bool, no_rules: bool) -> None:
        from ingestion.worker import IngestWorker, tune_gc

        worker = IngestWorker(cfg, rules=None) if no_rules or retire else IngestWorker(cfg)
        if retire:
            drained = worker.retire()
            self.stdout.write(f"worker {cfg.worker.name}: session {'ended' if drained else 'NOT drained, kept'}")
            return
        stop_on_signals(worker.stop)
        tune_gc(cfg.worker.gc_threshold)
        worker.run()

    def _supervise(self, cfg: IngestConfig, workers: int, base: list[str]) -> None:
        """Run N children, forward SIGTERM/SIGINT, restart a child that dies (with back-off)."""
        names = [f"{cfg.worker.name}-{i}" for i in range(workers)]
        children: dict[str, subprocess.Popen] = {}
        delays = {name: 1.0 for name in names}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True
            for child in children.values():
                child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        for name in names:
            children[name] = subprocess.Popen([*base, "--worker-name", name])
        while children:
            for name, child in list(children.items()):
                code = child.poll()
                if code is None:
                    continue
                del children[name]
                if not stopping:
                    logger.error("worker %s exited with %s; restarting in %.0f s", name, code, delays[name])
                    time.sleep(delays[name])
                    delays[name] = min(delays[name] * 2, RESTART_DELAY_MAX_S)
                    if not stopping:
                        children[name] = subprocess.Popen([*base, "--worker-name", name])
            time.sleep(0.5)

