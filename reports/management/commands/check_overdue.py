# SPDX-License-Identifier: AGPL-3.0-or-later
import signal
import time

from django.core.management.base import BaseCommand

from reports.services.notify import send_pending
from reports.services.overdue import check_overdue


class Command(BaseCommand):
    help = ("Flag open reports past their deadline (one report_overdue geo-event each) and send pending "
            "citizen notifications; --interval N repeats every N seconds until Ctrl-C / SIGTERM.")

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=0, help="seconds between runs; 0 = run once")

    def handle(self, *args, **options):
        stop = []
        signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
        while True:
            flagged = check_overdue()
            sent, failed = send_pending()
            if options["verbosity"]:
                self.stdout.write(f"{flagged} report(s) newly overdue; notifications: {sent} sent, {failed} failed")
            if not options["interval"] or stop:
                return
            try:
                time.sleep(options["interval"])
            except KeyboardInterrupt:
                return
            if stop:
                return
