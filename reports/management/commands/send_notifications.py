# SPDX-License-Identifier: AGPL-3.0-or-later
from django.core.management.base import BaseCommand

from reports.services.notify import MAX_ATTEMPTS, send_pending


class Command(BaseCommand):
    help = ("Send pending citizen notifications (outbox) through their channel's sender; failed ones are retried "
            "once their back-off is over.")

    def add_arguments(self, parser):
        parser.add_argument("--retry-exhausted", action="store_true",
                            help=f"also retry messages that failed {MAX_ATTEMPTS} times (kept in the outbox)")

    def handle(self, *args, **options):
        sent, failed = send_pending(retry_exhausted=options["retry_exhausted"])
        self.stdout.write(f"{sent} sent, {failed} failed")
