# SPDX-License-Identifier: AGPL-3.0-or-later
from django.core.management.base import BaseCommand

from reports.services.notify import send_pending


class Command(BaseCommand):
    help = "Send pending citizen notifications (outbox) through their channel's sender."

    def handle(self, *args, **options):
        sent, failed = send_pending()
        self.stdout.write(f"{sent} sent, {failed} failed")
