# SPDX-License-Identifier: AGPL-3.0-or-later
import threading

from django.core.management.base import BaseCommand

from reports.models import ReportMedia
from reports.services import media_store
from twin.shutdown import stop_on_signals


class Command(BaseCommand):
    help = ("Delete report media files no row of this database references (filings that were refused or "
            "rolled back after their photo was written), once they are older than --grace-hours; "
            "--interval N repeats every N seconds until Ctrl-C / SIGTERM.")

    def add_arguments(self, parser):
        parser.add_argument("--grace-hours", type=float, default=media_store.PRUNE_GRACE_S / 3600,
                            help="keep unreferenced files younger than this (a filing in flight writes its file "
                                 "before its row commits)")
        parser.add_argument("--interval", type=float, default=0, help="seconds between runs; 0 = run once")

    def handle(self, *args, **options):
        stop = threading.Event()
        stop_on_signals(stop)
        while True:
            referenced = set(ReportMedia.objects.exclude(sha256="").values_list("sha256", flat=True))
            removed = media_store.prune(referenced, grace_s=options["grace_hours"] * 3600)
            if options["verbosity"]:
                self.stdout.write(f"{removed} unreferenced media file(s) removed from {media_store.root()}")
            if not options["interval"] or stop.wait(options["interval"]):
                return
