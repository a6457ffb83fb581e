# SPDX-License-Identifier: AGPL-3.0-or-later
import threading

from django.core.management.base import BaseCommand

from reports.services.notify import send_pending
from reports.services.overdue import check_overdue
from twin.shutdown import stop_on_signals


class Command(BaseCommand):
    help = ("Flag open reports past their deadline (one report_overdue geo-event each) and send pending "
            "citizen notifications; --interval N repeats every N seconds until Ctrl-C / SIGTERM.")

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=0, help="seconds between runs; 0 = run once")

    def handle(self, *args, **options):
        stop = threading.Event()      # waited on, not slept through: SIGTERM stops it at once
        stop_on_signals(stop)
        while True:
            flagged = check_overdue()
            sent, failed = send_pending()
            if options["verbosity"]:
                self.stdout.write(f"{flagged} report(s) newly overdue; notifications: {sent} sent, {failed} failed")
            if not options["interval"] or stop.wait(options["interval"]):
                return
            if stop:
                return
