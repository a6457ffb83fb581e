# SPDX-License-Identifier: AGPL-3.0-or-later
from django.core.management.base import BaseCommand, CommandError

from reports.services.workflow import add_officer
from twin.errors import TwinError


class Command(BaseCommand):
    help = "Link a user (role agency_officer) to an agency: they then see and handle that agency's reports."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("agency", help="agency code, e.g. ubnd-19753")

    def handle(self, *args, **options):
        try:
            link = add_officer(options["username"], options["agency"])
        except TwinError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{link.user.get_username()} handles the reports of {link.agency.code}")
