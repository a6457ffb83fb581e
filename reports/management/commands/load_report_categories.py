# SPDX-License-Identifier: AGPL-3.0-or-later
from django.core.management.base import BaseCommand, CommandError

from reports.services.categories import load_categories
from twin.errors import TwinError


class Command(BaseCommand):
    help = "Load report categories (vi/en names, deadlines, routing) from a TOML file; re-running updates them."

    def add_arguments(self, parser):
        parser.add_argument("--file", help="default: fixtures/reports/report_categories.toml")

    def handle(self, *args, **options):
        try:
            rows = load_categories(options.get("file"))
        except TwinError as exc:
            raise CommandError(exc.message) from None
        if options["verbosity"]:
            self.stdout.write(f"{len(rows)} report categories loaded")
