# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin check-offline [--once] [--interval S]``: run the offline timers.

Devices fall silent without sending anything, so no reading can reveal it:
this command checks every watched device periodically (``interval_s`` of
``[rules.offline]``, or ``--interval``) and opens or ends ``offline`` events.
Run one instance per deployment; several are harmless (state rows are
locked) but useless.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from ingestion.rules.base import UnknownRuleError
from ingestion.rules.engine import get_engine
from twin.shutdown import stop_on_signals

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Open and end 'offline' events for devices silent longer than their reporting period plus grace."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Check once and exit (cron, tests).")
        parser.add_argument("--interval", type=float, help="Seconds between checks (default: the rule's interval_s).")
        parser.add_argument("--now", help="Check as of this ISO-8601 time (replays, tests); implies --once.")

    def handle(self, *args, once: bool, interval: float | None, now: str | None, **options) -> None:
        engine = get_engine()
        try:
            rule = engine.rule("offline")
        except UnknownRuleError as exc:
            raise CommandError(f"{exc}; enable [rules.offline] in rules.toml") from None
        moment = self._parse_now(now)
        if once or moment is not None:
            self._check(engine, moment)
            return
        period = interval if interval is not None else rule.cfg.interval_s
        if not 1 <= period <= 3600:
            raise CommandError("--interval must be between 1 and 3600 seconds")
        stop = threading.Event()
        stop_on_signals(stop)
        self.stderr.write(f"checking offline devices every {period:g} s (Ctrl-C to stop)")
        while not stop.is_set():
            self._check(engine, None)
            stop.wait(period)

    def _check(self, engine, moment: datetime | None) -> None:
        changes = engine.tick(moment).get("offline", 0)
        self.stdout.write(f"offline: {changes} event(s) opened or ended")

    @staticmethod
    def _parse_now(text: str | None) -> datetime | None:
        if text is None:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise CommandError(f"--now {text!r} is not an ISO-8601 time") from None
        if moment.tzinfo is None:
            raise CommandError("--now must carry a time zone, e.g. 2026-11-24T08:00:00+07:00")
        return moment
