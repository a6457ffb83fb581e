# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin load-wall-views [SLUG] [--file PATH]``: load a city's saved video-wall views from TOML.

Without ``--file`` it reads ``CITY_FIXTURES_DIR/<slug>/wall_views.toml``
(``twin load-city`` does the same after loading a city that ships one).
"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from map_ui.wall import FILE_NAME, load_city_views
from twin.errors import TwinError


class Command(BaseCommand):
    help = "Load a city's saved video-wall views (wall_views.toml); views are matched by name."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", nargs="?", help=f"City slug (default: {settings.DEFAULT_CITY}).")
        parser.add_argument("--file", type=Path, help=f"A views file (default: the city's {FILE_NAME}).")

    def handle(self, *args, slug: str | None = None, file: Path | None = None, verbosity: int = 1,
               **options) -> None:
        slug = slug or settings.DEFAULT_CITY
        path = file or Path(settings.CITY_FIXTURES_DIR) / slug / FILE_NAME
        try:
            count = load_city_views(slug, path)
        except TwinError as exc:
            raise CommandError(str(exc)) from exc
        if verbosity >= 1:
            self.stdout.write(self.style.SUCCESS(f"Loaded {count} wall view(s) for {slug} from {path}"))
