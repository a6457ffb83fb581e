# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin load-city [SLUG] [--config PATH]``: load a city from its files.

Without arguments it loads ``settings.DEFAULT_CITY`` from
``settings.CITY_FIXTURES_DIR/<slug>/city.toml``; ``--config`` loads any
other city described the same way (see docs/cities.md). Re-running updates
in place: nothing is duplicated, and features gone from the sources are
removed.
"""
from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from twin.cities.config import config_path_for, load_config
from twin.cities.loader import CityLoadReport, load_city
from twin.errors import TwinError


class Command(BaseCommand):
    help = "Load a city (admin areas, agencies, OSM layers, extra layers) from its city.toml and data files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", nargs="?", help=f"A city under CITY_FIXTURES_DIR (default: "
                            f"{settings.DEFAULT_CITY}).")
        parser.add_argument("--config", type=Path, help="Path to a city.toml anywhere (another city).")
        parser.add_argument("--no-progress", action="store_true", help="Do not draw progress bars.")

    def handle(self, *args, slug: str | None = None, config: Path | None = None, no_progress: bool = False,
               verbosity: int = 1, **options) -> None:
        if slug and config:
            raise CommandError("give either a city slug or --config, not both")
        try:
            path = config or config_path_for(slug or settings.DEFAULT_CITY, settings.CITY_FIXTURES_DIR)
            cfg = load_config(path)
            if verbosity >= 1:
                self.stdout.write(f"Loading {cfg.name_vi} ({cfg.slug}) from {path}")
            progress = verbosity >= 1 and not no_progress and sys.stderr.isatty()
            echo = self.stdout.write if verbosity >= 2 else (lambda _: None)
            report = load_city(cfg, progress=progress, echo=echo)
            views = path.parent / "wall_views.toml"     # the city's saved video-wall views (map_ui/wall.py)
            if views.exists():
                from map_ui.wall import load_city_views

                report.messages.append(f"{load_city_views(cfg.slug, views)} wall view(s) from {views.name}")
        except TwinError as exc:
            raise CommandError(str(exc)) from exc
        except DatabaseError as exc:  # e.g. a removed feature is still referenced by an event
            raise CommandError(f"the database refused the load; nothing was written: {exc}") from exc
        if verbosity >= 1:
            self._print(report)

    def _print(self, report: CityLoadReport) -> None:
        for layer in report.layers:
            self.stdout.write(f"  {layer.report.summary()}")
            for note in layer.notes:
                self.stdout.write(f"    {note}")
        for message in report.messages:
            self.stdout.write(f"  {message}")
        if report.repaired:
            self.stdout.write(self.style.WARNING(f"  {len(report.repaired)} invalid geometr"
                                                 f"{'y' if len(report.repaired) == 1 else 'ies'} repaired "
                                                 "with ST_MakeValid:"))
            for item in report.repaired:
                self.stdout.write(self.style.WARNING(f"    {item}"))
        self.stdout.write(self.style.SUCCESS(f"Loaded {report.city.name_vi} ({report.city.slug}) "
                                             f"in {report.seconds:.1f} s"))
