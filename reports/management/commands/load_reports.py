# SPDX-License-Identifier: AGPL-3.0-or-later
from django.core.management.base import BaseCommand, CommandError

from reports.services.bulk import load_sf311
from reports.services.categories import ensure_categories
from twin.errors import TwinError


class Command(BaseCommand):
    help = ("Load the real 311 report sample (fixtures/reports/sf311_cases_sample.csv, ODC-PDDL) placed onto the "
            "city's wards: a realistic volume for KPIs. Re-running skips cases already loaded.")

    def add_arguments(self, parser):
        parser.add_argument("--file", help="a 311 CSV with the DataSF columns (default: the shipped sample)")
        parser.add_argument("--city", help="city slug (default: DEFAULT_CITY)")
        parser.add_argument("--limit", type=int, help="read at most this many rows")
        parser.add_argument("--replace", action="store_true", help="delete previously loaded cases first")

    def handle(self, *args, **options):
        try:
            ensure_categories()
            result = load_sf311(options.get("file"), city_slug=options.get("city"), limit=options.get("limit"),
                                replace=options["replace"])
        except (TwinError, ValueError, OSError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{result.loaded} reports loaded, {result.skipped} skipped, {result.deleted} replaced "
                          f"(read {result.read} rows)")
