# SPDX-License-Identifier: AGPL-3.0-or-later
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reports.services.categories import load_categories
from reports.services.publish import reports_layer
from twin.errors import TwinError
from twin.models import City


class Command(BaseCommand):
    help = ("Load report categories (vi/en names, deadlines, routing) from a TOML file; re-running updates them. "
            "Also creates the city's (empty) public reports layer, so maps list it from the start.")

    def add_arguments(self, parser):
        parser.add_argument("--file", help="default: fixtures/reports/report_categories.toml")
        parser.add_argument("--city", help="city slug for the reports layer (default: DEFAULT_CITY)")

    def handle(self, *args, **options):
        try:
            rows = load_categories(options.get("file"))
        except TwinError as exc:
            raise CommandError(exc.message) from None
        city = City.objects.filter(slug=options.get("city") or settings.DEFAULT_CITY).first()
        layer = reports_layer(city) if city else None
        if options["verbosity"]:
            self.stdout.write(f"{len(rows)} report categories loaded"
                              + (f"; reports layer {layer.slug}" if layer else "; no city loaded, no layer yet"))
